//! The vocabulary every stage of strata shares: what an image is made of, with
//! no knowledge of where it comes from or how it is built.
//!
//! Digests and canonical JSON name and serialise blobs; references and tags
//! name images; image paths, layer entries and the filesystem view describe a
//! layer's contents (whiteouts are applied here and nowhere else); `layout`
//! reads OCI image layouts; `compression` is the one place a layer's media
//! type becomes a decompressor.

pub mod atomic;
pub mod compression;
pub mod digest;
pub mod entry;
pub mod json;
pub mod layout;
pub mod manifest;
pub mod path;
pub mod platform;
pub mod reference;
pub mod regular;
pub mod tarball;
pub mod view;
