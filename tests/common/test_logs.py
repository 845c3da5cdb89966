"""Logs are JSON lines with service and ids; phone numbers are masked above debug level."""

from __future__ import annotations

import json
import logging

from services.common.logs import JsonFormatter, mask_phone


def test_json_line_with_ids_and_masked_phone() -> None:
    record = logging.LogRecord("router", logging.INFO, __file__, 1, "texted +13125550101", None, None)
    record.ticket = "SR-1001"
    record.request = "em-abc"
    line = json.loads(JsonFormatter("router").format(record))
    assert line["service"] == "router"
    assert (line["ticket"], line["request"]) == ("SR-1001", "em-abc")
    assert line["msg"] == "texted +1312***0101"
    debug = logging.LogRecord("router", logging.DEBUG, __file__, 1, "texted +13125550101", None, None)
    assert "+13125550101" in JsonFormatter("router").format(debug)
    assert mask_phone("call +442079460123 now") == "call +4420***0123 now"
