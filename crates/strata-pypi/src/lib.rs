//! PyPI as a package source. It finds nothing by running Python: the
//! interpreter and platform are facts read from the image, wheels are the
//! only distributions (building an sdist would execute code), and every
//! wheel is checked against the index's sha256 and its own `RECORD`. Like
//! the Debian source, it knows nothing of layers or images: it resolves to
//! lock entries, fetches into the cache and hands assembly unpacked files.

pub mod pylock;
pub mod requirements;
