"""Kubernetes names and quantities, in the API server's own grammar.

Shared by the config checks (``serving.kubernetes``) and the manifest renderer
and validator, so a value the config accepts is one the cluster accepts.
"""
from __future__ import annotations

import re
from typing import Optional

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_QUANTITY = re.compile(r"([+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))((?:[KMGTPE]i)|[numkMGTPE]|[eE][+-]?[0-9]+)?")
_QUANTITY_SCALE = {"": 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
                   "P": 1e15, "E": 1e18, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40,
                   "Pi": 2 ** 50, "Ei": 2 ** 60}
RESOURCE_NAME = re.compile(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
PVC_URI = re.compile(r"pvc://(?P<claim>[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)(?P<path>(/[^/]+)*)/?")
# A standard 5-field cron schedule (minute hour day-of-month month day-of-week), as a
# CronJob takes it; KFP's recurring runs take the same with a seconds field in front.
CRON_FIELD = r"(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?(,(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?)*"
CRON = re.compile(rf"{CRON_FIELD}( {CRON_FIELD}){{4}}")
GCS_URI = re.compile(r"gs://[a-z0-9][-_.a-z0-9]*[a-z0-9](/[^/]+)*/?")


def parse_quantity(text: str) -> Optional[float]:
    """A Kubernetes quantity ("500m", "2Gi", "1e3") as a number; None if malformed."""
    match = _QUANTITY.fullmatch(text)
    if not match:
        return None
    number, suffix = match.group(1), match.group(2) or ""
    if suffix not in _QUANTITY_SCALE:  # decimal exponent, e.g. 1e3
        return float(number + suffix)
    return float(number) * _QUANTITY_SCALE[suffix]
