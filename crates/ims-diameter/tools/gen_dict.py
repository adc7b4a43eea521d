#!/usr/bin/env python3
"""Regenerates src/dict/avps.rs: the static AVP table.

The *selection* of AVPs, their spec names, data types and M-bit rules follow RFC 6733 s4.5, RFC 4006/8506,
RFC 7155, RFC 4590, RFC 7683, RFC 8583, TS 29.229 s6.3 (table 6.3.1), TS 29.214 s5.3 and TS 29.212 s5.3 /
TS 29.061 s16.4.7, TS 29.338 s5.3.3 / s6.3.3 (S6c, SGd) with the TS 29.272 / 29.336 / 29.173 AVPs SGd reuses; codes and enumerated value names were cross-checked against the Wireshark Diameter
dictionary installed with tshark (/usr/share/wireshark/diameter), which this script reads. Spec names
and types win where the two disagree (OVERRIDES, RENAMES below).

usage: python3 tools/gen_dict.py > src/dict/avps.rs
"""
import re, sys

FILES = ['dictionary.xml', 'nasreq.xml', 'chargecontrol.xml', 'TGPP.xml', 'sip.xml', 'etsie2e4.xml']
VENDORS = {'None': 0, 'TGPP': 10415, 'ETSI': 13019}

# (vendor, code) selections
BASE = [1, 8, 25, 27, 30, 31, 33, 44, 50, 55, 85, 97, 104, 110, 111, 121] + list(range(257, 302)) + [
    412, 413, 414, 417, 420, 421, 425, 429, 431, 443, 444, 445, 446, 447, 450, 451, 458, 459, 460,
    480, 483, 485] + list(range(621, 628)) + [649, 650, 651, 652]
TGPP = list(range(1, 30)) + list(range(500, 561)) + list(range(600, 659)) + list(range(1000, 1101)) + \
    list(range(2800, 2856)) + \
    [701, 1489, 1645, 2400, 3102, 3111] + list(range(3300, 3334)) + \
    [318, 2401, 2402, 2403, 2404, 2405, 2406, 2408, 2409, 2410, 3100, 3101, 3112] + \
    list(range(3334, 3349))  # TS 29.338 S6c/SGd (Rel-16 SMSF, Rel-17 SBI AVPs incl.) and the AVPs it reuses
ETSI = [458]

RENAMES = {
    'Acct-Session-Id': 'Accounting-Session-Id',
    'Accounting-Multi-Session-Id': 'Acct-Multi-Session-Id',
    'Cx-User-Data': 'User-Data',
    '3GPP-SIP-Number-Auth-Items': 'SIP-Number-Auth-Items',
    '3GPP-SIP-Authentication-Scheme': 'SIP-Authentication-Scheme',
    '3GPP-SIP-Authenticate': 'SIP-Authenticate',
    '3GPP-SIP-Authorization': 'SIP-Authorization',
    '3GPP-SIP-Auth-Data-Item': 'SIP-Auth-Data-Item',
    '3GPP-SIP-Item-Number': 'SIP-Item-Number',
    'Wildcarded-PSI': 'Wildcarded-Public-Identity',
    'User-Data-Request-Type-OBSOLETE': 'User-Data-Request-Type',
    'Digest-Qop': 'Digest-QoP',
}
# name -> (type or None, M rule or None)
OVERRIDES = {
    'Result-Code': ('Unsigned32', None),
    'Experimental-Result-Code': ('Unsigned32', None),
    'Inband-Security-Id': ('Unsigned32', None),
    'Authorization-Lifetime': ('Unsigned32', None),
    'Framed-IP-Address': ('OctetString', None),
    'Codec-Data': ('OctetString', None),
    'Supported-Features': (None, 'MustNot'),
    'Feature-List-ID': (None, 'MustNot'),
    'Feature-List': (None, 'MustNot'),
    'Access-Network-Charging-Address': (None, 'Must'),
    # TS 29.338 tables 5.3.3.1/1 and 6.3.3.1/1: the Release 11 S6c/SGd AVPs have M set
    'TFR-Flags': (None, 'Must'),
    'SM-Delivery-Failure-Cause': (None, 'Must'),
    'SRR-Flags': (None, 'Must'),
    'SM-Delivery-Not-Intended': (None, 'Must'),
    'MWD-Status': (None, 'Must'),
    'MME-Absent-User-Diagnostic-SM': (None, 'Must'),
    'MSC-Absent-User-Diagnostic-SM': (None, 'Must'),
    'SGSN-Absent-User-Diagnostic-SM': (None, 'Must'),
    'SM-Delivery-Outcome': (None, 'Must'),
    'MME-SM-Delivery-Outcome': (None, 'Must'),
    'MSC-SM-Delivery-Outcome': (None, 'Must'),
    'SGSN-SM-Delivery-Outcome': (None, 'Must'),
    'IP-SM-GW-SM-Delivery-Outcome': (None, 'Must'),
    'SM-Delivery-Cause': (None, 'Must'),
    'Absent-User-Diagnostic-SM': (None, 'Must'),
    # TS 29.272 table 7.3.1/1 and TS 29.173 table 6.4.1 (Wireshark leaves M unstated)
    'MME-Number-for-MT-SMS': (None, 'Must'),
    'LMSI': (None, 'Must'),
    # TS 29.173 table 6.4.1/1 (Serving-Node and its members as S6c reuses them; freeDiameter's
    # dict_ts29173_avps agrees: M,V for these, V only for MME-Realm / SGSN-Name / SGSN-Realm).
    # TS 29.338 table 5.3.3.1/2 sets M on MME-Realm for S6c alone: not modelled (one rule per AVP).
    'Serving-Node': (None, 'Must'),
    'MME-Name': (None, 'Must'),
    'MSC-Number': (None, 'Must'),
    'LCS-Capabilities-Sets': (None, 'Must'),
    'GMLC-Address': (None, 'Must'),
    'MME-Realm': (None, 'MustNot'),
    'SGSN-Name': (None, 'MustNot'),
    'SGSN-Realm': (None, 'MustNot'),
}
# AVPs the Wireshark 4.0 dictionary lacks: (vendor, code) -> (name, type, M rule, enums)
EXTRA = {
    (10415, 3324): ('SMSMI-Correlation-ID', 'Grouped', 'mustnot', []),
    # HSS-ID is an OctetString in the TS 29.338 S6c AVP table (freeDiameter's dict_ts29338_avps,
    # generated from that table, agrees, and with every other 3300-3333 type and M rule here)
    (10415, 3325): ('HSS-ID', 'OctetString', 'mustnot', []),
    (10415, 3326): ('Originating-SIP-URI', 'UTF8String', 'mustnot', []),
    (10415, 3327): ('Destination-SIP-URI', 'UTF8String', 'mustnot', []),
    (10415, 3328): ('OFR-Flags', 'Unsigned32', 'mustnot', []),
    # Release 17 (TS 29.338 s5.3.3.37-39, Enumerated NOT_SUPPORT_SBI (0) / SUPPORT_SBI (1), M bit
    # not set): codes as two independent implementations define them (mobius corsac-diameter
    # TgppAvpCodes, RestComm-derived jdiameter Avp.java); Wireshark 4.0 lacks them
    (10415, 3346): ('SMSF-3GPP-SBI-Support-Indicator', 'Enumerated', 'mustnot',
                    [('NOT_SUPPORT_SBI', 0), ('SUPPORT_SBI', 1)]),
    (10415, 3347): ('SMSF-Non-3GPP-SBI-Support-Indicator', 'Enumerated', 'mustnot',
                    [('NOT_SUPPORT_SBI', 0), ('SUPPORT_SBI', 1)]),
    (10415, 3348): ('IP-SM-GW-SBI-Support-Indicator', 'Enumerated', 'mustnot',
                    [('NOT_SUPPORT_SBI', 0), ('SUPPORT_SBI', 1)]),
}
# enumerated value names the Wireshark dictionary spells differently from the specification
ENUM_NAMES = {
    ('SM-Delivery-Cause', 0): 'UE_MEMORY_CAPACITY_EXCEEDED',
    ('SM-Enumerated-Delivery-Failure-Cause', 3): 'UNKNOWN_SERVICE_CENTRE',
}
TYPES = {'IPAddress': 'Address', 'AppId': 'Unsigned32', 'VendorId': 'Unsigned32',
         'OctetStringOrUTF8': 'OctetString', 'QoSFilterRule': 'OctetString'}
RULE = {'must': 'Must', 'may': 'May', 'mustnot': 'MustNot', 'shouldnot': 'MustNot', 'should': 'May'}


def load():
    out = {}
    for f in FILES:
        txt = open('/usr/share/wireshark/diameter/' + f, encoding='utf-8', errors='replace').read()
        txt = re.sub(r'<!--.*?-->', '', txt, flags=re.S)
        for m in re.finditer(r'<avp\s([^>]*?)(/>|>(.*?)</avp>)', txt, flags=re.S):
            attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', m.group(1)))
            body = m.group(3) or ''
            t = re.search(r'type-name="([^"]+)"', body)
            enums = re.findall(r'<enum\s+name="([^"]*)"\s+code="(-?\d+)"', body)
            vend = VENDORS.get(attrs.get('vendor-id', 'None'))
            if vend is None:
                continue
            key = (vend, int(attrs['code']))
            if key in out:
                continue
            out[key] = dict(name=attrs['name'], m=attrs.get('mandatory', 'may'),
                            type='Grouped' if '<grouped' in body else (t.group(1) if t else 'OctetString'),
                            enums=[(n, int(c)) for n, c in enums])
    for key, (name, ty, m, enums) in EXTRA.items():
        out.setdefault(key, dict(name=name, m=m, type=ty, enums=enums))
    return out


def const_name(n):
    return re.sub(r'[^A-Z0-9]+', '_', n.upper()).strip('_').replace('3GPP_', 'TGPP_') if not n[0].isdigit() \
        else 'TGPP_' + re.sub(r'[^A-Z0-9]+', '_', n.upper())[5:]


def main():
    d = load()
    sel = [(0, c) for c in BASE] + [(10415, c) for c in TGPP] + [(13019, c) for c in ETSI]
    rows = []
    for key in sorted(set(sel)):
        if key not in d:
            continue
        e = d[key]
        name = RENAMES.get(e['name'], e['name'])
        ty = TYPES.get(e['type'], e['type'])
        m = RULE.get(e['m'], 'May')
        o = OVERRIDES.get(name)
        if o:
            ty = o[0] or ty
            m = o[1] or m
        enums = [(ENUM_NAMES.get((name, c), n), c) for n, c in e['enums']] if ty == 'Enumerated' else []
        rows.append((key, name, ty, m, enums))
    w = sys.stdout.write
    w('// @generated by tools/gen_dict.py — do not edit by hand.\n')
    w('//! The AVP table: one constant per AVP, and [`ALL`] sorted by (vendor, code).\n\n')
    w('use super::{AvpDef, AvpType, FlagRule};\n\n')
    for (v, c), name, ty, m, enums in rows:
        cn = const_name(name)
        w(f'/// `{name}` (code {c}' + (f', vendor {v}' if v else '') + f'): {ty}.\n')
        en = ', '.join(f'({(val + 2**31) % 2**32 - 2**31}, "{n}")' for n, val in enums)
        w(f'pub const {cn}: &AvpDef = &AvpDef {{ code: {c}, vendor: {v}, name: "{name}", ty: AvpType::{ty}, '
          f'm: FlagRule::{m}, enums: &[{en}] }};\n')
    w('\n/// Every AVP of the dictionary, sorted by `(vendor, code)` for binary search.\n')
    w(f'pub static ALL: [&AvpDef; {len(rows)}] = [\n')
    for (v, c), name, *_ in rows:
        w(f'    {const_name(name)},\n')
    w('];\n')


main()
