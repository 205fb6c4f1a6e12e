"""Serving: the REST model server (TF Serving's API), exports and gateway."""
