//! The one error type of the crate: what went wrong and on which line.

use core::fmt;

/// What a parser found wrong. Each variant names the RFC 8866 §9 grammar element that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input is empty (or only line ends).
    Empty,
    /// The input is larger than `Limits::max_size`.
    TooLarge,
    /// More lines than `Limits::max_lines`.
    TooManyLines,
    /// A line longer than `Limits::max_line_len`.
    LineTooLong,
    /// More media descriptions than `Limits::max_media`.
    TooManyMedia,
    /// More `a=` lines in one section than `Limits::max_attributes`.
    TooManyAttributes,
    /// More fields of one kind (formats, `b=`, `c=`, `t=`, `r=`, `e=`, `p=`) than the limits allow.
    TooManyFields,
    /// The text is not UTF-8.
    Utf8,
    /// A CR not followed by LF.
    BareCr,
    /// A NUL byte (RFC 8866 `byte-string` excludes NUL, CR and LF).
    Nul,
    /// A non-empty line that is not `<type>=<value>`.
    NotTypeValue,
    /// A type letter this parser does not know; RFC 8866 §5 says to ignore the whole description.
    UnknownType(char),
    /// A line where RFC 8866 §9 does not allow it (e.g. `c=` after `t=` at session level).
    OutOfOrder(char),
    /// A second line of a type allowed once per section.
    Duplicate(char),
    /// A mandatory line (`v=`, `o=`, `s=`, `t=`) is missing.
    Missing(char),
    /// `v=` is not `0`.
    Version,
    /// An empty line before the end of the description.
    EmptyLine,
    /// A field value did not match its grammar; the text names what was expected.
    Syntax(&'static str),
    /// A number is larger than its field allows.
    Overflow(&'static str),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::Empty => "empty session description",
            ErrorKind::TooLarge => "session description exceeds the size limit",
            ErrorKind::TooManyLines => "too many lines",
            ErrorKind::LineTooLong => "line exceeds the length limit",
            ErrorKind::TooManyMedia => "too many media descriptions",
            ErrorKind::TooManyAttributes => "too many attributes",
            ErrorKind::TooManyFields => "too many fields of one kind",
            ErrorKind::Utf8 => "invalid UTF-8",
            ErrorKind::BareCr => "CR not followed by LF",
            ErrorKind::Nul => "NUL byte in a line",
            ErrorKind::NotTypeValue => "line is not <type>=<value>",
            ErrorKind::UnknownType(c) => return write!(f, "unknown line type '{c}'"),
            ErrorKind::OutOfOrder(c) => return write!(f, "'{c}=' line out of order"),
            ErrorKind::Duplicate(c) => return write!(f, "second '{c}=' line in one section"),
            ErrorKind::Missing(c) => return write!(f, "missing '{c}=' line"),
            ErrorKind::Version => "v= is not 0",
            ErrorKind::EmptyLine => "empty line inside the description",
            ErrorKind::Syntax(what) => return write!(f, "syntax error: expected {what}"),
            ErrorKind::Overflow(what) => return write!(f, "{what} out of range"),
        };
        f.write_str(s)
    }
}

/// A parse failure: the kind, the 1-based line number and the byte offset from the start of the
/// description (line 0 when the error is not on a line, e.g. [`ErrorKind::TooLarge`]).
///
/// `Copy` and allocation-free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub struct Error {
    /// What was wrong.
    pub kind: ErrorKind,
    /// 1-based line number; 0 when not about one line.
    pub line: usize,
    /// Byte offset from the start of the input.
    pub offset: usize,
}

impl Error {
    pub(crate) const fn new(kind: ErrorKind, line: usize, offset: usize) -> Self {
        Error { kind, line, offset }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{} at byte {}", self.kind, self.offset)
        } else {
            write!(
                f,
                "{} on line {} (byte {})",
                self.kind, self.line, self.offset
            )
        }
    }
}
