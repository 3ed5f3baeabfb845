//! The order dpkg configures packages in: the Essential set first, and every
//! package after what it (pre-)depends on, so that a `postinst` sees the
//! files its dependencies' scripts wrote (`r-base-core` reads the
//! `/etc/papersize` that `libpaper1` writes).

use std::collections::HashMap;

use crate::Unpacked;
use crate::control::for_each_paragraph;
use crate::relation;

/// Indexes into `packages`, dependencies before dependents. The walk starts
/// from the Essential set (by name), then the packages the user asked for,
/// in the order asked (as apt walks its command line), then the rest by
/// name; cycles are broken where the walk meets them.
pub fn configuration_order(packages: &[Unpacked], requested: &[&str]) -> Vec<usize> {
    let by_name: HashMap<&str, usize> = packages
        .iter()
        .enumerate()
        .map(|(i, p)| (p.locked.name.as_str(), i))
        .collect();
    let mut essential = vec![false; packages.len()];
    let mut depends: Vec<Vec<usize>> = vec![Vec::new(); packages.len()];
    for (i, package) in packages.iter().enumerate() {
        let _ = for_each_paragraph(package.control.text.as_bytes(), |p| {
            essential[i] = p.get("Essential") == Some("yes");
            for field in ["Pre-Depends", "Depends"] {
                let Some(list) = p.get(field).and_then(|t| relation::parse_list(t).ok()) else {
                    continue;
                };
                // The first alternative that is installed is the one used.
                depends[i].extend(list.iter().filter_map(|alternatives| {
                    alternatives
                        .iter()
                        .find_map(|r| by_name.get(r.name.as_str()).copied())
                }));
            }
            Ok(())
        });
    }
    let asked = |i: usize| {
        requested
            .iter()
            .position(|r| *r == packages[i].locked.name)
            .unwrap_or(usize::MAX)
    };
    let mut roots: Vec<usize> = (0..packages.len()).collect();
    roots.sort_by_key(|i| (!essential[*i], asked(*i), packages[*i].locked.name.as_str()));
    let mut state = vec![0u8; packages.len()]; // 0 new, 1 visiting, 2 done
    let mut order = Vec::with_capacity(packages.len());
    for root in roots {
        // Depth-first, post-order, without recursion: deep dependency
        // chains cannot overflow the stack.
        let mut stack = vec![(root, 0usize)];
        while let Some((node, next)) = stack.pop() {
            if next == 0 {
                if state[node] != 0 {
                    continue;
                }
                state[node] = 1;
            }
            if let Some(&dep) = depends[node].get(next) {
                stack.push((node, next + 1));
                if state[dep] == 0 {
                    stack.push((dep, 0));
                }
            } else {
                state[node] = 2;
                order.push(node);
            }
        }
    }
    order
}
