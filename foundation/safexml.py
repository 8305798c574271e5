"""The one XML parser for every XML input, from clients and from nodes alike (a node is user-supplied,
so its answers are as untrusted as a client's requests).

defusedxml refuses DTDs, entity declarations and external references inside the parser (expat's
handlers), so the check holds whatever the document's encoding: a byte-level ``<!DOCTYPE`` search
misses a UTF-16 body.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

__all__ = ["parse_untrusted_xml", "XMLRefused"]


class XMLRefused(ValueError):
    """Not well-formed XML, or XML with a DTD or entities."""


def parse_untrusted_xml(body: bytes) -> ET.Element:
    try:
        return fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ET.ParseError, DefusedXmlException, LookupError) as exc:   # LookupError: an unknown encoding
        raise XMLRefused(str(exc)) from None
