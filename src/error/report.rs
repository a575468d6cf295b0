//! Printing errors: a peer's text cut short, and an error with its causes on one line.

use std::error::Error as StdError;
use std::fmt;

/// The most of a codec's message that an error's text repeats: codecs quote what they could
/// not read, and a peer chooses that text, so a log line stays short whatever it sent.
pub(crate) const MAX_QUOTED: usize = 200;

/// Displays an error's text cut to [`MAX_QUOTED`] bytes (at a character boundary), saying how
/// long it was.
pub(crate) struct Truncated<'a, E: ?Sized>(pub(crate) &'a E);

impl<E: fmt::Display + ?Sized> fmt::Display for Truncated<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_cut(f, &self.0.to_string())
    }
}

fn write_cut(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    if text.len() <= MAX_QUOTED {
        return f.write_str(text);
    }
    let cut = (0..=MAX_QUOTED)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    write!(f, "{}... ({} bytes in all)", &text[..cut], text.len())
}

/// Displays an error and each of its sources, `error: cause: cause`, every part cut to
/// [`MAX_QUOTED`] bytes: for reports whose sources may quote what a peer sent. A source whose
/// text the error above it already quotes (as many libraries' errors do) is left out.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut above = self.0.to_string();
        write_cut(f, &above)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !above.contains(&text) {
                f.write_str(": ")?;
                write_cut(f, &text)?;
            }
            above = text;
            source = cause.source();
        }
        Ok(())
    }
}

/// An error and each of its causes on one line, `error: cause: cause`, as `anyhow` prints
/// `{:#}`: what [`Error::report`](crate::Error::report) gives, and [`Report::new`] for any
/// error (a boxed one that may hold a typed-ws error, say).
///
/// Each cause appears once: a cause whose text the error above it already quotes is left
/// out. Each part is cut to 200 bytes, saying how long it was, because a peer chooses some of
/// that text (a codec's message quotes what it could not read).
///
/// ```
/// use std::io;
/// use typed_ws::Report;
///
/// let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "Connection refused");
/// let error = typed_ws::Error::from(refused);
/// assert_eq!(error.to_string(), "I/O error on the connection");
/// assert_eq!(
///     error.report().to_string(),
///     "I/O error on the connection: Connection refused"
/// );
///
/// let boxed: Box<dyn std::error::Error + Send + Sync> = error.into();
/// assert_eq!(
///     Report::new(boxed.as_ref()).to_string(),
///     "I/O error on the connection: Connection refused"
/// );
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Report<'a>(&'a (dyn StdError + 'static));

impl<'a> Report<'a> {
    /// The report of any error and its sources.
    pub fn new(error: &'a (dyn StdError + 'static)) -> Self {
        Report(error)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Chain(self.0).fmt(f)
    }
}
