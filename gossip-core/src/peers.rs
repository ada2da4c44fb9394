//! Choosing peers at random among the live members: for gossip rounds, probes' helpers and
//! rumors. Members heard from directly come first, so that a flood of made-up members cannot
//! take over a node's choices.

use std::net::SocketAddr;

use rand::RngExt;
use rand_core::Rng;

use crate::node::Node;
use crate::table::NodeTable;

impl<R: Rng> Node<R> {
    /// How many other members are Alive or Suspect.
    pub(crate) fn live_members(&self) -> usize {
        self.table.live_count() - usize::from(self.table.local().state.is_live())
    }

    /// Up to `count` distinct random live members other than this node and `exclude`.
    pub(crate) fn random_live_members(&mut self, count: usize, exclude: &[&str]) -> Vec<SocketAddr> {
        let chosen = self.random_live_member_indices(count, exclude);
        chosen.into_iter().filter_map(|i| self.table.get(i).map(|(_, member)| member.address)).collect()
    }

    /// The table indices of up to `count` distinct random live members other than this node
    /// and `exclude`: members heard from directly first, and at most one never heard from (a
    /// hostile peer may have made up any number of those; one still lets a fresh node reach
    /// the members it knows only by name).
    pub(crate) fn random_live_member_indices(&mut self, count: usize, exclude: &[&str]) -> Vec<usize> {
        let len = self.table.len();
        let eligible = |table: &NodeTable, index: usize| {
            table.get(index).is_some_and(|(name, member)| member.state.is_live() && !exclude.contains(&name))
        };
        let heard =
            |table: &NodeTable, index: usize| table.get(index).is_some_and(|(_, member)| member.heard);
        let mut chosen: Vec<usize> = Vec::with_capacity(count);
        let mut unheard: Option<usize> = None;
        let heard_count = self.table.heard_count();
        if len <= 4 * count + 16 || heard_count * 4 < len {
            // Small tables, and tables of mostly unheard members (a flood of fakes): one pass.
            // When heard members are rare, only they are collected.
            let mut heard_members: Vec<usize> = Vec::new();
            let mut unheard_members: Vec<usize> = Vec::new();
            for index in 1..len {
                if heard(&self.table, index) {
                    if eligible(&self.table, index) {
                        heard_members.push(index);
                    }
                } else if len <= 4 * count + 16 && eligible(&self.table, index) {
                    unheard_members.push(index);
                }
            }
            let picked =
                rand::seq::index::sample(&mut self.rng, heard_members.len(), count.min(heard_members.len()));
            chosen.extend(picked.into_iter().map(|i| heard_members[i]));
            if chosen.len() < count && !unheard_members.is_empty() {
                unheard = Some(unheard_members[self.rng.random_range(0..unheard_members.len())]);
            } else if chosen.len() < count && len > 4 * count + 16 {
                // A large table: draw the never-heard member at random.
                for _ in 0..8 {
                    let index = self.rng.random_range(1..len);
                    if !heard(&self.table, index) && eligible(&self.table, index) {
                        unheard = Some(index);
                        break;
                    }
                }
            }
        } else {
            for _ in 0..8 * count {
                if chosen.len() == count {
                    break;
                }
                let index = self.rng.random_range(1..len);
                if chosen.contains(&index) || Some(index) == unheard || !eligible(&self.table, index) {
                    continue;
                }
                if heard(&self.table, index) {
                    chosen.push(index);
                } else if unheard.is_none() {
                    unheard = Some(index);
                }
            }
        }
        if chosen.len() < count {
            chosen.extend(unheard);
        }
        chosen
    }
}
