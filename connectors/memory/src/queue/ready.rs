//! Which messages a receive may hand out, in what order.
//!
//! Standard queues hand out any visible message, oldest first. FIFO queues hand out a
//! message group only while none of its messages is invisible (in flight or waiting out a
//! release delay), always from the group's head, so each group is processed in order, one
//! batch at a time.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

pub(crate) enum Ready {
    Standard(BTreeSet<u64>),
    Fifo(Groups),
}

#[derive(Default)]
pub(crate) struct Groups {
    groups: HashMap<Arc<str>, Group>,
    /// Groups with no invisible message, by the sequence number of their head.
    available: BTreeSet<(u64, Arc<str>)>,
}

#[derive(Default)]
struct Group {
    /// Every message of the group still in the queue, visible or not.
    members: BTreeSet<u64>,
    invisible: usize,
}

impl Ready {
    pub(crate) fn new(fifo: bool) -> Self {
        if fifo {
            Ready::Fifo(Groups::default())
        } else {
            Ready::Standard(BTreeSet::new())
        }
    }

    /// A new, visible message.
    pub(crate) fn added(&mut self, seq: u64, group: &Arc<str>) {
        match self {
            Ready::Standard(set) => {
                set.insert(seq);
            }
            Ready::Fifo(g) => {
                let entry = g.groups.entry(group.clone()).or_default();
                entry.members.insert(seq);
                if entry.invisible == 0 && entry.members.len() == 1 {
                    g.available.insert((seq, group.clone()));
                }
            }
        }
    }

    /// An invisible message became visible again.
    pub(crate) fn shown(&mut self, seq: u64, group: &Arc<str>) {
        match self {
            Ready::Standard(set) => {
                set.insert(seq);
            }
            Ready::Fifo(g) => g.settle(group, |_| {}),
        }
    }

    /// An invisible message left the queue (deleted or dead-lettered).
    pub(crate) fn removed(&mut self, seq: u64, group: &Arc<str>) {
        match self {
            Ready::Standard(_) => {}
            Ready::Fifo(g) => g.settle(group, |members| {
                members.remove(&seq);
            }),
        }
    }

    /// Up to `max` visible messages, which the caller makes invisible.
    pub(crate) fn take(&mut self, max: usize) -> Vec<u64> {
        let mut out = Vec::with_capacity(max.min(1024));
        match self {
            Ready::Standard(set) => {
                while out.len() < max {
                    let Some(seq) = set.pop_first() else { break };
                    out.push(seq);
                }
            }
            Ready::Fifo(g) => {
                while out.len() < max {
                    let Some((_, name)) = g.available.pop_first() else { break };
                    let Some(group) = g.groups.get_mut(&name) else { continue };
                    // No member is invisible, so the whole group is visible, head first.
                    let before = out.len();
                    out.extend(group.members.iter().take(max - before));
                    group.invisible += out.len() - before;
                }
            }
        }
        out
    }
}

impl Groups {
    /// One invisible member of `name` stopped being invisible; `change` updates the members.
    /// The group becomes available again when nothing of it is invisible any more.
    fn settle(&mut self, name: &Arc<str>, change: impl FnOnce(&mut BTreeSet<u64>)) {
        let Some(group) = self.groups.get_mut(name) else { return };
        change(&mut group.members);
        group.invisible = group.invisible.saturating_sub(1);
        if group.invisible > 0 {
            return;
        }
        match group.members.first() {
            Some(&head) => {
                self.available.insert((head, name.clone()));
            }
            None => {
                self.groups.remove(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &str) -> Arc<str> {
        s.into()
    }

    #[test]
    fn standard_hands_out_oldest_first_and_takes_back() {
        let mut r = Ready::new(false);
        for seq in [3, 1, 2] {
            r.added(seq, &g(""));
        }
        assert_eq!(r.take(2), [1, 2]);
        r.shown(1, &g(""));
        assert_eq!(r.take(5), [1, 3]);
        assert!(r.take(5).is_empty());
    }

    #[test]
    fn fifo_blocks_a_group_while_any_member_is_invisible() {
        let mut r = Ready::new(true);
        let (a, b) = (g("a"), g("b"));
        r.added(1, &a);
        r.added(2, &b);
        r.added(3, &a);
        r.added(4, &a);
        // Group a (head 1) first, whole; then b.
        assert_eq!(r.take(2), [1, 3]);
        assert_eq!(r.take(10), [2]);
        assert!(r.take(10).is_empty(), "a has 1 and 3 in flight, b has 2");
        r.removed(1, &a);
        assert!(r.take(10).is_empty(), "3 is still in flight");
        r.shown(3, &a);
        assert_eq!(r.take(10), [3, 4]);
        r.removed(2, &b);
        r.removed(3, &a);
        r.removed(4, &a);
        assert!(r.take(10).is_empty());
        match &r {
            Ready::Fifo(groups) => assert!(groups.groups.is_empty() && groups.available.is_empty()),
            Ready::Standard(_) => unreachable!(),
        }
    }
}
