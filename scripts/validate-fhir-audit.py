#!/usr/bin/env python3
"""Validates an NDJSON export of FHIR R4 AuditEvent resources
(`throughline audit export --format fhir`) with the fhir.resources package,
pinned to 6.1.0, whose models are FHIR 4.0.1 (R4): structure, cardinality and
types. fhir.resources does not check terminology bindings, so the two
*required* bindings of AuditEvent (action, outcome) are checked here too.
Exits non-zero on the first invalid resource, naming its line."""
import json
import sys

import fhir.resources
from fhir.resources.auditevent import AuditEvent

if fhir.resources.__fhir_version__ != "4.0.1":
    sys.exit(f"fhir.resources {fhir.resources.__version__} is FHIR {fhir.resources.__fhir_version__}, not R4 4.0.1")

count = 0
with open(sys.argv[1], encoding="utf-8") as f:
    for number, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            event = AuditEvent.parse_obj(json.loads(line))
        except Exception as e:  # pydantic.ValidationError or JSON errors
            sys.exit(f"line {number}: not a valid R4 AuditEvent: {e}")
        if event.resource_type != "AuditEvent":
            sys.exit(f"line {number}: resourceType is {event.resource_type}")
        # Required bindings (http://hl7.org/fhir/R4/auditevent.html).
        if event.action is not None and event.action not in {"C", "R", "U", "D", "E"}:
            sys.exit(f"line {number}: action {event.action!r} is not in audit-event-action")
        if event.outcome is not None and event.outcome not in {"0", "4", "8", "12"}:
            sys.exit(f"line {number}: outcome {event.outcome!r} is not in audit-event-outcome")
        count += 1
if count == 0:
    sys.exit("no resources")
print(f"{count} AuditEvent resources valid against FHIR R4 {fhir.resources.__fhir_version__}")
