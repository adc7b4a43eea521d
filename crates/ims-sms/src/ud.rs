//! TP-User-Data (TS 23.040 §9.2.3.24): the user data header with its information elements, and the
//! short message itself as septets (GSM 7 bit) or octets (8-bit data, UCS2, compressed).

use crate::alphabet::{self, NationalLanguage, ShiftTables};
use crate::error::{DecodeError, EncodeError, ErrorKind};
use crate::params::{Alphabet, DataCodingScheme};

/// One information element of a user data header (TS 23.040 §9.2.3.24). Elements this crate
/// does not interpret, and known IEIs with an unexpected length, are kept as
/// [`InformationElement::Other`] so nothing is lost on re-encode.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InformationElement {
    /// IEI 0x00: concatenated short messages, 8-bit reference (§9.2.3.24.1).
    Concat8 {
        /// Concatenated short message reference number.
        reference: u8,
        /// Maximum number of short messages in the concatenated message.
        total: u8,
        /// Sequence number of this part, from 1.
        sequence: u8,
    },
    /// IEI 0x08: concatenated short messages, 16-bit reference (§9.2.3.24.8).
    Concat16 {
        /// Reference number.
        reference: u16,
        /// Number of parts.
        total: u8,
        /// Sequence number of this part, from 1.
        sequence: u8,
    },
    /// IEI 0x01: special SMS message indication (§9.2.3.24.2).
    SpecialMessageIndication {
        /// Octet 1: bit 8 store, bits 7-6 profile, bits 5-3 extended type, bits 2-1 basic type.
        indication: u8,
        /// Octet 2: message count.
        count: u8,
    },
    /// IEI 0x04: application port addressing, 8-bit (§9.2.3.24.3).
    Port8 {
        /// Destination port.
        destination: u8,
        /// Originator port.
        originator: u8,
    },
    /// IEI 0x05: application port addressing, 16-bit (§9.2.3.24.4).
    Port16 {
        /// Destination port.
        destination: u16,
        /// Originator port.
        originator: u16,
    },
    /// IEI 0x24: national language single shift (§9.2.3.24.15).
    NationalSingleShift(NationalLanguage),
    /// IEI 0x25: national language locking shift (§9.2.3.24.16).
    NationalLockingShift(NationalLanguage),
    /// Any other element, as received.
    Other {
        /// The IEI.
        iei: u8,
        /// The element data.
        data: Vec<u8>,
    },
}

impl InformationElement {
    fn decode(iei: u8, d: &[u8]) -> InformationElement {
        use InformationElement as E;
        match (iei, d.len()) {
            (0x00, 3) => E::Concat8 {
                reference: d[0],
                total: d[1],
                sequence: d[2],
            },
            (0x08, 4) => E::Concat16 {
                reference: u16::from_be_bytes([d[0], d[1]]),
                total: d[2],
                sequence: d[3],
            },
            (0x01, 2) => E::SpecialMessageIndication {
                indication: d[0],
                count: d[1],
            },
            (0x04, 2) => E::Port8 {
                destination: d[0],
                originator: d[1],
            },
            (0x05, 4) => E::Port16 {
                destination: u16::from_be_bytes([d[0], d[1]]),
                originator: u16::from_be_bytes([d[2], d[3]]),
            },
            (0x24, 1) => E::NationalSingleShift(NationalLanguage::from_code(d[0])),
            (0x25, 1) => E::NationalLockingShift(NationalLanguage::from_code(d[0])),
            _ => E::Other {
                iei,
                data: d.to_vec(),
            },
        }
    }

    /// The IEI.
    pub fn iei(&self) -> u8 {
        use InformationElement as E;
        match self {
            E::Concat8 { .. } => 0x00,
            E::Concat16 { .. } => 0x08,
            E::SpecialMessageIndication { .. } => 0x01,
            E::Port8 { .. } => 0x04,
            E::Port16 { .. } => 0x05,
            E::NationalSingleShift(_) => 0x24,
            E::NationalLockingShift(_) => 0x25,
            E::Other { iei, .. } => *iei,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        use InformationElement as E;
        out.push(self.iei());
        match self {
            E::Concat8 {
                reference,
                total,
                sequence,
            } => out.extend_from_slice(&[3, *reference, *total, *sequence]),
            E::Concat16 {
                reference,
                total,
                sequence,
            } => {
                out.push(4);
                out.extend_from_slice(&reference.to_be_bytes());
                out.extend_from_slice(&[*total, *sequence]);
            }
            E::SpecialMessageIndication { indication, count } => {
                out.extend_from_slice(&[2, *indication, *count])
            }
            E::Port8 {
                destination,
                originator,
            } => out.extend_from_slice(&[2, *destination, *originator]),
            E::Port16 {
                destination,
                originator,
            } => {
                out.push(4);
                out.extend_from_slice(&destination.to_be_bytes());
                out.extend_from_slice(&originator.to_be_bytes());
            }
            E::NationalSingleShift(l) | E::NationalLockingShift(l) => {
                out.extend_from_slice(&[1, l.code()])
            }
            E::Other { data, .. } => {
                let n = u8::try_from(data.len())
                    .map_err(|_| EncodeError::TooLong("information element"))?;
                out.push(n);
                out.extend_from_slice(data);
            }
        }
        Ok(())
    }
}

/// The concatenation element of a part, whichever reference size it uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Concat {
    /// Reference number (8 or 16 bits).
    pub reference: u16,
    /// Number of parts.
    pub total: u8,
    /// This part's sequence number, from 1.
    pub sequence: u8,
    /// Whether the 16-bit reference element (IEI 0x08) carries it.
    pub sixteen_bit: bool,
}

/// A user data header: its information elements in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct UserDataHeader {
    /// The elements, in wire order.
    pub elements: Vec<InformationElement>,
}

impl UserDataHeader {
    /// Parses the elements (the octets after UDHL).
    pub(crate) fn decode(b: &[u8], at: usize) -> Result<UserDataHeader, DecodeError> {
        let mut elements = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let (Some(&iei), Some(&len)) = (b.get(i), b.get(i + 1)) else {
                return Err(DecodeError::new(ErrorKind::UdhOverrun, at + i));
            };
            let end = i + 2 + usize::from(len);
            let data = b
                .get(i + 2..end)
                .ok_or_else(|| DecodeError::new(ErrorKind::UdhOverrun, at + i))?;
            elements.push(InformationElement::decode(iei, data));
            i = end;
        }
        Ok(UserDataHeader { elements })
    }

    /// The header octets including UDHL.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = vec![0];
        for e in &self.elements {
            e.encode(&mut out)?;
        }
        out[0] =
            u8::try_from(out.len() - 1).map_err(|_| EncodeError::TooLong("user data header"))?;
        Ok(out)
    }

    /// The concatenation element, if any (the first one).
    pub fn concat(&self) -> Option<Concat> {
        self.elements.iter().find_map(|e| match *e {
            InformationElement::Concat8 {
                reference,
                total,
                sequence,
            } => Some(Concat {
                reference: u16::from(reference),
                total,
                sequence,
                sixteen_bit: false,
            }),
            InformationElement::Concat16 {
                reference,
                total,
                sequence,
            } => Some(Concat {
                reference,
                total,
                sequence,
                sixteen_bit: true,
            }),
            _ => None,
        })
    }

    /// The application ports (destination, originator), if addressed.
    pub fn ports(&self) -> Option<(u16, u16)> {
        self.elements.iter().find_map(|e| match *e {
            InformationElement::Port8 {
                destination,
                originator,
            } => Some((u16::from(destination), u16::from(originator))),
            InformationElement::Port16 {
                destination,
                originator,
            } => Some((destination, originator)),
            _ => None,
        })
    }

    /// The GSM 7 bit tables the national language shift elements select.
    pub fn shift_tables(&self) -> ShiftTables {
        let mut t = ShiftTables::DEFAULT;
        for e in &self.elements {
            match *e {
                InformationElement::NationalSingleShift(l) if t.single.is_none() => {
                    t.single = Some(l)
                }
                InformationElement::NationalLockingShift(l) if t.locking.is_none() => {
                    t.locking = Some(l)
                }
                _ => {}
            }
        }
        t
    }
}

/// Maximum TP-UD length in octets.
pub const MAX_UD_OCTETS: usize = 140;
/// Maximum TP-UDL in septets.
pub const MAX_UD_SEPTETS: usize = 160;

/// TP-UD: an optional header and the short message, as septets (one per `u8`, values 0-127) when
/// the TP-DCS says GSM 7 bit uncompressed, else as octets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct UserData {
    /// The user data header (TP-UDHI set).
    pub header: Option<UserDataHeader>,
    /// Septets or octets of the short message.
    pub body: Vec<u8>,
}

/// Septets a header of `octets` octets (UDHL included) takes, and the fill bits after it.
pub fn header_septets(octets: usize) -> (usize, u8) {
    let septets = (octets * 8).div_ceil(7);
    (septets, (septets * 7 - octets * 8) as u8)
}

impl UserData {
    /// GSM 7 bit text with the given tables; national language shift elements are added to the
    /// header when the tables are not the default ones.
    pub fn gsm7(text: &str, tables: ShiftTables) -> Result<UserData, EncodeError> {
        let body = tables.encode(text).map_err(EncodeError::Unrepresentable)?;
        let mut elements = Vec::new();
        if let Some(l) = tables.locking {
            elements.push(InformationElement::NationalLockingShift(l));
        }
        if let Some(l) = tables.single {
            elements.push(InformationElement::NationalSingleShift(l));
        }
        Ok(UserData {
            header: (!elements.is_empty()).then_some(UserDataHeader { elements }),
            body,
        })
    }

    /// UCS2 (UTF-16BE) text.
    pub fn ucs2(text: &str) -> UserData {
        let mut body = Vec::with_capacity(text.len() * 2);
        alphabet::encode_ucs2(text, &mut body);
        UserData { header: None, body }
    }

    /// 8-bit data.
    pub fn binary(data: &[u8]) -> UserData {
        UserData {
            header: None,
            body: data.to_vec(),
        }
    }

    /// The text, for GSM 7 bit (with the header's national language tables) and UCS2; `None`
    /// for 8-bit data and compressed text.
    pub fn text(&self, dcs: DataCodingScheme) -> Option<String> {
        if dcs.compressed() {
            return None;
        }
        match dcs.alphabet() {
            Alphabet::Gsm7 => Some(
                self.header
                    .as_ref()
                    .map_or(ShiftTables::DEFAULT, UserDataHeader::shift_tables)
                    .decode(&self.body),
            ),
            Alphabet::Ucs2 => Some(alphabet::decode_ucs2(&self.body)),
            Alphabet::EightBit => None,
        }
    }

    /// Decodes TP-UDL at `pos` and the TP-UD after it; returns the user data and the offset after it.
    pub(crate) fn decode(
        tpdu: &[u8],
        pos: usize,
        dcs: DataCodingScheme,
        udhi: bool,
        tpdu_name: &'static str,
    ) -> Result<(UserData, usize), DecodeError> {
        let udl = *tpdu.get(pos).ok_or_else(|| {
            DecodeError::new(
                ErrorKind::TpduTruncated {
                    tpdu: tpdu_name,
                    field: "TP-UDL",
                    at: pos,
                    len: tpdu.len(),
                },
                pos,
            )
        })?;
        let septets = dcs.udl_in_septets();
        let unit = if septets { "septets" } else { "octets" };
        let (max, needed) = if septets {
            (MAX_UD_SEPTETS, (usize::from(udl) * 7).div_ceil(8))
        } else {
            (MAX_UD_OCTETS, usize::from(udl))
        };
        if usize::from(udl) > max {
            return Err(DecodeError::new(
                ErrorKind::TpUdlTooLarge { udl, unit },
                pos,
            ));
        }
        let start = pos + 1;
        let present = tpdu.len() - start.min(tpdu.len());
        if needed > present {
            return Err(DecodeError::new(
                ErrorKind::TpUdlOverrun {
                    udl,
                    unit,
                    needed,
                    present,
                },
                pos,
            ));
        }
        let data = &tpdu[start..start + needed];
        let end = start + needed;
        if !udhi {
            let body = if septets {
                alphabet::unpack_septets(data, 0, usize::from(udl))
            } else {
                data.to_vec()
            };
            return Ok((UserData { header: None, body }, end));
        }
        let Some(&udhl) = data.first() else {
            return Err(DecodeError::new(ErrorKind::UdhiWithoutHeader, pos));
        };
        let hlen = 1 + usize::from(udhl);
        if hlen > data.len() {
            return Err(DecodeError::new(ErrorKind::UdhOverrun, start));
        }
        let header = UserDataHeader::decode(&data[1..hlen], start + 1)?;
        let body = if septets {
            let (hs, fill) = header_septets(hlen);
            if hs > usize::from(udl) {
                return Err(DecodeError::new(ErrorKind::UdhOverrun, start));
            }
            alphabet::unpack_septets(&data[hlen..], fill, usize::from(udl) - hs)
        } else {
            data[hlen..].to_vec()
        };
        Ok((
            UserData {
                header: Some(header),
                body,
            },
            end,
        ))
    }

    /// TP-UDL in the unit the TP-DCS gives.
    pub fn udl(&self, dcs: DataCodingScheme) -> Result<usize, EncodeError> {
        let h = match &self.header {
            Some(h) => h.encode()?.len(),
            None => 0,
        };
        Ok(if dcs.udl_in_septets() {
            header_septets(h).0 + self.body.len()
        } else {
            h + self.body.len()
        })
    }

    /// Appends TP-UDL and TP-UD.
    pub fn encode(&self, dcs: DataCodingScheme, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let header = match &self.header {
            Some(h) => h.encode()?,
            None => Vec::new(),
        };
        if dcs.udl_in_septets() {
            let (hs, fill) = header_septets(header.len());
            let udl = hs + self.body.len();
            if udl > MAX_UD_SEPTETS {
                return Err(EncodeError::UserDataTooLong(format!("{udl} septets")));
            }
            out.push(udl as u8);
            out.extend_from_slice(&header);
            alphabet::pack_septets(&self.body, fill, out);
        } else {
            let udl = header.len() + self.body.len();
            if udl > MAX_UD_OCTETS {
                return Err(EncodeError::UserDataTooLong(format!("{udl} octets")));
            }
            out.push(udl as u8);
            out.extend_from_slice(&header);
            out.extend_from_slice(&self.body);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_bits_per_header_size() {
        // TS 23.040 §9.2.3.24: 6-octet UDH -> 1 fill bit, 7 -> 0, 11 -> 3
        assert_eq!(header_septets(6), (7, 1));
        assert_eq!(header_septets(7), (8, 0));
        assert_eq!(header_septets(11), (13, 3));
    }

    #[test]
    fn unknown_and_odd_elements_are_kept() {
        let h = [0x70, 0x02, 0xAA, 0xBB, 0x00, 0x02, 0x01, 0x02];
        let u = UserDataHeader::decode(&h, 0).unwrap();
        assert_eq!(u.elements.len(), 2);
        assert!(matches!(
            u.elements[1],
            InformationElement::Other { iei: 0, .. }
        ));
        let enc = u.encode().unwrap();
        assert_eq!(&enc[1..], &h);
    }
}
