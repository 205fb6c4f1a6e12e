"""components.data: the curated schema's import follows its content."""


def test_an_edited_curated_schema_is_a_new_import(tmp_path, taxi_config):
    """The schema importer's parameters (its cache key) follow the file's content."""
    import dataclasses

    from components.data import build_schema_importer

    path = tmp_path / "schema.pbtxt"
    path.write_text('feature { name: "fare" type: FLOAT }\n')
    cfg = dataclasses.replace(taxi_config, schema=str(path))
    first = build_schema_importer(cfg)
    assert first.id == "ImportSchemaGen" and first.exec_properties["schema_file"] == str(path)
    assert build_schema_importer(cfg).exec_properties == first.exec_properties
    path.write_text('feature { name: "fare" type: INT }\n')
    edited = build_schema_importer(cfg).exec_properties["schema_sha256"]
    assert edited != first.exec_properties["schema_sha256"]
    # compiling for another file system: the digest of the host's copy is passed in
    assert build_schema_importer(cfg, "abc").exec_properties["schema_sha256"] == "abc"
