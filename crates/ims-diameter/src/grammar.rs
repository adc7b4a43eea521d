//! Command and Grouped AVP grammars (RFC 6733 §3.2 / §4.4): which AVPs, how often, and what the
//! `*[ AVP ]` tail admits. Typed decoders check them; [`crate::Command::grammar`] exposes them.

use crate::avp::{Avp, RawAvp};
use crate::dict::{self, AvpDef};
use crate::error::{Error, ErrorKind};

/// How often an AVP may occur.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Occurs {
    /// `< AVP >`: exactly once, in its fixed position (first).
    Fixed,
    /// `{ AVP }`: exactly once.
    Required,
    /// `[ AVP ]`: at most once.
    Optional,
    /// `*[ AVP ]`: any number.
    Any,
    /// `1*{ AVP }`: at least once.
    AtLeastOne,
    /// `0*2[ AVP ]`: at most twice.
    AtMostTwo,
}

/// What may appear besides the named AVPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Extra {
    /// Nothing (no `*[ AVP ]`): another AVP is 5008 DIAMETER_AVP_NOT_ALLOWED.
    Closed,
    /// `*[ AVP ]`: any AVP, but an M-bit AVP the dictionary does not know is 5001.
    Any,
    /// Anything, unchecked (the content of Failed-AVP).
    Raw,
}

/// One AVP of a grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The AVP.
    pub avp: &'static AvpDef,
    /// Its multiplicity.
    pub occurs: Occurs,
}

/// A command's or Grouped AVP's grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grammar {
    /// The named AVPs in specification order.
    pub rules: &'static [Rule],
    /// What else may appear.
    pub extra: Extra,
}

/// Handles an AVP that no rule names. Inlined with the AVP's parts as values, so the typed
/// decoders' walk keeps the current AVP in registers (a call taking `&Avp` made every iteration
/// store it to the stack).
#[inline(always)]
pub(crate) fn other_avp<'a>(
    avp: &Avp<'a>,
    extra: Extra,
    other: &mut Vec<RawAvp<'a>>,
) -> Result<(), Error> {
    other_avp_slow(avp.to_raw(), avp.offset(), extra, other)
}

#[cold]
#[inline(never)]
fn other_avp_slow<'a>(
    raw: RawAvp<'a>,
    offset: usize,
    extra: Extra,
    other: &mut Vec<RawAvp<'a>>,
) -> Result<(), Error> {
    let mandatory = raw.flags.0 & crate::AvpFlags::MANDATORY != 0;
    match extra {
        Extra::Raw => {}
        Extra::Any | Extra::Closed if mandatory && dict::lookup(raw.code, raw.vendor).is_none() => {
            return Err(Error::at_avp(ErrorKind::AvpUnsupported, offset, raw.id()))
        }
        Extra::Any => {}
        Extra::Closed => return Err(Error::at_avp(ErrorKind::AvpNotAllowed, offset, raw.id())),
    }
    other.push(raw);
    Ok(())
}
