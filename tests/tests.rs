//! The integration suite: strata's binary against real tools (umoci,
//! bubblewrap, skopeo, docker-registry, podman), one module per area.

mod util;

mod archives;
mod bad_input;
mod base_layout;
mod cache;
mod ci_examples;
mod cli;
mod compression;
mod concurrent;
mod consumers;
mod copy;
mod debian_live;
mod diff;
mod dist;
mod examples;
mod fidelity;
mod fuzz;
mod golden;
mod inspect;
mod interrupted;
mod layering;
mod lint;
mod modules;
mod output;
mod packages;
mod platforms;
mod pypi;
mod pypi_live;
mod registries;
mod reproducible;
mod sbom;
mod shared_cache;
