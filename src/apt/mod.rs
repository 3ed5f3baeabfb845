//! Debian packages: signed repositories, the solver, and installation by
//! extraction (never by running dpkg or a maintainer script).

pub mod control;
pub mod index;
pub mod relation;
pub mod solve;
pub mod version;
