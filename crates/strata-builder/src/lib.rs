//! strata's builder: a recipe in, an OCI image out.
//!
//! The modules, in the order data flows through them:
//!
//! - `recipe` (KDL → typed `Recipe` with spans), `provenance` (the build's
//!   time and revision), `lock` (the packages each platform gets), `tre`
//!   (the TRE preset: folders, user, environment, volumes);
//! - `base` (the base image, pinned and verified, as the `Lower` view);
//! - `assemble` (base view + package layers + recipe layers → entry lists);
//! - `layer` (entry list → compressed tar, diff_id and digest in one pass);
//! - `image` (config, manifest, index), `sbom` (what the image holds);
//! - `output` (OCI layout, archives) and `push` (registries);
//! - `build` wires them for one recipe.
//!
//! The commands that read what a build made or will make sit on top:
//! `lint`, `inspect`, `diff`, `init`.

pub mod assemble;
pub mod base;
pub mod build;
pub mod image;
pub mod inputs;
pub mod layer;
pub mod lock;
pub mod output;
pub mod provenance;
pub mod push;
pub mod recipe;
pub mod sbom;
pub mod stage;
pub mod tre;

pub mod diff;
pub mod init;
pub mod inspect;
pub mod lint;
