//! strata: a declarative, daemonless, byte-reproducible OCI image builder.
//!
//! The modules follow the pipeline:
//! `recipe` → `base` → `assemble` → `layer` → `image` → `output`,
//! wired together by `build`. `cache` holds built blobs by digest; `layout`
//! reads OCI layouts (bases, `inspect`).

pub mod apt;
pub mod assemble;
pub mod atomic;
pub mod base;
pub mod build;
pub mod cache;
pub mod diff;
pub mod digest;
pub mod fetch;
pub mod image;
pub mod init;
pub mod inspect;
pub mod json;
pub mod layer;
pub mod layout;
pub mod lint;
pub mod lock;
pub mod output;
pub mod platform;
pub mod progress;
pub mod provenance;
pub mod push;
pub mod recipe;
pub mod reference;
pub mod registry;
pub mod retry;
pub mod sbom;
