//! Addresses: the TP address fields TP-OA/TP-DA/TP-RA (TS 23.040 §9.1.2.5, Address-Length in
//! semi-octets, alphanumeric values packed in GSM 7 bit) and the RP-OA/RP-DA fields (TS 24.011
//! §8.2.5.1-2, length in octets, BCD only).

use crate::alphabet::{self, ShiftTables};
use crate::error::{DecodeError, EncodeError, ErrorKind};
use core::fmt;

/// Type of number (TS 23.040 §9.1.2.5, TS 24.008 §10.5.4.7): bits 7-5 of the type-of-address octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeOfNumber {
    /// 000
    Unknown,
    /// 001
    International,
    /// 010
    National,
    /// 011
    NetworkSpecific,
    /// 100
    Subscriber,
    /// 101: alphanumeric, GSM 7 bit default alphabet (TP addresses only).
    Alphanumeric,
    /// 110
    Abbreviated,
    /// 111: reserved for extension.
    Reserved,
}

impl TypeOfNumber {
    /// From the 3-bit code.
    pub fn from_code(c: u8) -> TypeOfNumber {
        match c & 7 {
            0 => TypeOfNumber::Unknown,
            1 => TypeOfNumber::International,
            2 => TypeOfNumber::National,
            3 => TypeOfNumber::NetworkSpecific,
            4 => TypeOfNumber::Subscriber,
            5 => TypeOfNumber::Alphanumeric,
            6 => TypeOfNumber::Abbreviated,
            _ => TypeOfNumber::Reserved,
        }
    }

    /// The 3-bit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Numbering plan identification (TS 23.040 §9.1.2.5): bits 4-1 of the type-of-address octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberingPlan {
    /// 0000
    Unknown,
    /// 0001: ISDN/telephone (E.164/E.163).
    Isdn,
    /// 0011: data (X.121).
    Data,
    /// 0100: telex.
    Telex,
    /// 0101: service centre specific plan 1.
    ServiceCentreSpecific1,
    /// 0110: service centre specific plan 2.
    ServiceCentreSpecific2,
    /// 1000: national.
    National,
    /// 1001: private.
    Private,
    /// 1010: ERMES (ETSI DE/PS 3 01-3).
    Ermes,
    /// Any other (reserved) code.
    Other(u8),
}

impl NumberingPlan {
    /// From the 4-bit code.
    pub fn from_code(c: u8) -> NumberingPlan {
        match c & 0x0f {
            0 => NumberingPlan::Unknown,
            1 => NumberingPlan::Isdn,
            3 => NumberingPlan::Data,
            4 => NumberingPlan::Telex,
            5 => NumberingPlan::ServiceCentreSpecific1,
            6 => NumberingPlan::ServiceCentreSpecific2,
            8 => NumberingPlan::National,
            9 => NumberingPlan::Private,
            10 => NumberingPlan::Ermes,
            c => NumberingPlan::Other(c),
        }
    }

    /// The 4-bit code.
    pub fn code(self) -> u8 {
        match self {
            NumberingPlan::Unknown => 0,
            NumberingPlan::Isdn => 1,
            NumberingPlan::Data => 3,
            NumberingPlan::Telex => 4,
            NumberingPlan::ServiceCentreSpecific1 => 5,
            NumberingPlan::ServiceCentreSpecific2 => 6,
            NumberingPlan::National => 8,
            NumberingPlan::Private => 9,
            NumberingPlan::Ermes => 10,
            NumberingPlan::Other(c) => c & 0x0f,
        }
    }
}

/// An address: type of number, numbering plan and value. The value is the digits (`0-9 * # a b
/// c`) or, for [`TypeOfNumber::Alphanumeric`] TP addresses, the text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// Type of number.
    pub ton: TypeOfNumber,
    /// Numbering plan.
    pub npi: NumberingPlan,
    /// Digits, or the text of an alphanumeric address.
    pub value: String,
}

/// Maximum TP Address-Length in semi-octets (10 octets of Address-Value).
pub const MAX_TP_ADDRESS_SEMI_OCTETS: u8 = 20;
/// Maximum RP address length in octets (type-of-address octet plus 10 octets of digits).
pub const MAX_RP_ADDRESS_OCTETS: u8 = 11;

impl Address {
    /// An international E.164 number (digits without `+`).
    pub fn international(digits: &str) -> Address {
        Address {
            ton: TypeOfNumber::International,
            npi: NumberingPlan::Isdn,
            value: digits.to_owned(),
        }
    }

    /// A number: `+` makes it international, otherwise it is of unknown type (E.164 plan).
    pub fn number(s: &str) -> Address {
        match s.strip_prefix('+') {
            Some(d) => Address::international(d),
            None => Address {
                ton: TypeOfNumber::Unknown,
                npi: NumberingPlan::Isdn,
                value: s.to_owned(),
            },
        }
    }

    /// An alphanumeric originator (TON 101, NPI 0000).
    pub fn alphanumeric(text: &str) -> Address {
        Address {
            ton: TypeOfNumber::Alphanumeric,
            npi: NumberingPlan::Unknown,
            value: text.to_owned(),
        }
    }

    /// Whether the value is text rather than digits.
    pub fn is_alphanumeric(&self) -> bool {
        self.ton == TypeOfNumber::Alphanumeric
    }

    /// The type-of-address octet (bit 8 set).
    pub fn type_of_address(&self) -> u8 {
        0x80 | self.ton.code() << 4 | self.npi.code()
    }

    /// Decodes a TP address at `pos` of `tpdu`; returns it and the offset after it.
    pub(crate) fn decode_tp(
        tpdu: &[u8],
        pos: usize,
        tpdu_name: &'static str,
        field: &'static str,
    ) -> Result<(Address, usize), DecodeError> {
        let truncated = |at: usize| {
            DecodeError::new(
                ErrorKind::TpduTruncated {
                    tpdu: tpdu_name,
                    field,
                    at,
                    len: tpdu.len(),
                },
                at,
            )
        };
        let len = *tpdu.get(pos).ok_or_else(|| truncated(pos))?;
        if len > MAX_TP_ADDRESS_SEMI_OCTETS {
            return Err(DecodeError::new(
                ErrorKind::TpAddressLength {
                    length: len,
                    at: pos,
                },
                pos,
            ));
        }
        let toa = *tpdu.get(pos + 1).ok_or_else(|| truncated(pos + 1))?;
        let octets = usize::from(len).div_ceil(2);
        let end = pos + 2 + octets;
        let value = tpdu.get(pos + 2..end).ok_or_else(|| truncated(pos + 2))?;
        let ton = TypeOfNumber::from_code(toa >> 4);
        let npi = NumberingPlan::from_code(toa);
        let value = if ton == TypeOfNumber::Alphanumeric {
            let count = usize::from(len) * 4 / 7;
            ShiftTables::DEFAULT.decode(&alphabet::unpack_septets(value, 0, count))
        } else {
            decode_bcd(value, usize::from(len)).map_err(|k| DecodeError::new(k, pos + 2))?
        };
        Ok((Address { ton, npi, value }, end))
    }

    /// Appends the TP encoding (Address-Length in semi-octets, type of address, value).
    pub fn encode_tp(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.is_alphanumeric() {
            let septets = ShiftTables::DEFAULT
                .encode(&self.value)
                .map_err(EncodeError::Unrepresentable)?;
            let semi = (septets.len() * 7).div_ceil(4);
            if semi > usize::from(MAX_TP_ADDRESS_SEMI_OCTETS) {
                return Err(EncodeError::Address(self.value.clone()));
            }
            out.push(semi as u8);
            out.push(self.type_of_address());
            alphabet::pack_septets(&septets, 0, out);
        } else {
            let n = self.value.chars().count();
            if n > usize::from(MAX_TP_ADDRESS_SEMI_OCTETS) {
                return Err(EncodeError::Address(self.value.clone()));
            }
            out.push(n as u8);
            out.push(self.type_of_address());
            encode_bcd(&self.value, out)?;
        }
        Ok(())
    }

    /// Decodes an RP address at `pos`: `None` for length 0. Returns the offset after it.
    pub(crate) fn decode_rp(
        msg: &[u8],
        pos: usize,
        element: &'static str,
    ) -> Result<(Option<Address>, usize), DecodeError> {
        let len = *msg
            .get(pos)
            .ok_or_else(|| DecodeError::new(ErrorKind::RpTruncated { element }, pos))?;
        if len == 0 {
            return Ok((None, pos + 1));
        }
        if len > MAX_RP_ADDRESS_OCTETS {
            return Err(DecodeError::new(
                ErrorKind::RpAddressLength { length: len },
                pos,
            ));
        }
        let end = pos + 1 + usize::from(len);
        let body = msg
            .get(pos + 1..end)
            .ok_or_else(|| DecodeError::new(ErrorKind::RpTruncated { element }, pos))?;
        let toa = body[0];
        let digits = &body[1..];
        // the digit count: two per octet, minus a final filler
        let mut n = digits.len() * 2;
        if digits.last().is_some_and(|d| d >> 4 == 0xF) {
            n -= 1;
        }
        let value = decode_bcd(digits, n).map_err(|k| DecodeError::new(k, pos + 2))?;
        Ok((
            Some(Address {
                ton: TypeOfNumber::from_code(toa >> 4),
                npi: NumberingPlan::from_code(toa),
                value,
            }),
            end,
        ))
    }

    /// Appends the RP encoding (length in octets, type of address, BCD digits).
    pub fn encode_rp(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let n = self.value.chars().count();
        if n > 2 * usize::from(MAX_RP_ADDRESS_OCTETS - 1) {
            return Err(EncodeError::Address(self.value.clone()));
        }
        out.push((1 + n.div_ceil(2)) as u8);
        out.push(self.type_of_address());
        encode_bcd(&self.value, out)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ton == TypeOfNumber::International {
            f.write_str("+")?;
        }
        f.write_str(&self.value)
    }
}

fn digit_char(n: u8) -> Option<char> {
    Some(match n {
        0..=9 => (b'0' + n) as char,
        0xA => '*',
        0xB => '#',
        0xC => 'a',
        0xD => 'b',
        0xE => 'c',
        _ => return None,
    })
}

fn char_digit(c: char) -> Option<u8> {
    Some(match c {
        '0'..='9' => c as u8 - b'0',
        '*' => 0xA,
        '#' => 0xB,
        'a' | 'A' => 0xC,
        'b' | 'B' => 0xD,
        'c' | 'C' => 0xE,
        _ => return None,
    })
}

/// `count` BCD digits, low nibble first (TS 24.008 §10.5.4.7).
fn decode_bcd(octets: &[u8], count: usize) -> Result<String, ErrorKind> {
    let mut s = String::with_capacity(count);
    for i in 0..count {
        let o = octets.get(i / 2).copied().unwrap_or(0xFF);
        let nibble = if i % 2 == 0 { o & 0x0F } else { o >> 4 };
        s.push(digit_char(nibble).ok_or(ErrorKind::AddressDigit { nibble })?);
    }
    Ok(s)
}

/// BCD digits, low nibble first, a 0xF filler after an odd count.
fn encode_bcd(digits: &str, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let mut pending: Option<u8> = None;
    for c in digits.chars() {
        let d = char_digit(c).ok_or_else(|| EncodeError::Address(digits.to_owned()))?;
        match pending.take() {
            None => pending = Some(d),
            Some(lo) => out.push(lo | d << 4),
        }
    }
    if let Some(lo) = pending {
        out.push(lo | 0xF0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphanumeric_info_sms() {
        // TS 23.040 §9.1.2.5 alphanumeric: "InfoSMS" is 13 semi-octets, TON 101
        let a = Address::alphanumeric("InfoSMS");
        let mut out = Vec::new();
        a.encode_tp(&mut out).unwrap();
        assert_eq!(out, [0x0d, 0xd0, 0x49, 0xb7, 0xf9, 0x3d, 0x6d, 0x4e, 0x01]);
        let (b, end) = Address::decode_tp(&out, 0, "SMS-DELIVER", "TP-OA").unwrap();
        assert_eq!((b, end), (a, out.len()));
    }

    #[test]
    fn odd_digits_get_a_filler() {
        let a = Address::international("12345");
        let mut out = Vec::new();
        a.encode_rp(&mut out).unwrap();
        assert_eq!(out, [0x04, 0x91, 0x21, 0x43, 0xF5]);
        let (b, _) = Address::decode_rp(&out, 0, "RP-DA").unwrap();
        assert_eq!(b, Some(a));
    }
}
