//! The persistence graph of a program under a model (petgraph): a node per effect, an edge
//! a -> b when b durable implies a durable, labelled with the rule that made it.

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use unplug_model::{Persistence, Rule};

/// The persistence graph, and each effect's predecessors for quick lookups while enumerating.
pub struct Graph {
    pub graph: DiGraph<usize, &'static Rule>,
    preds: Vec<Vec<usize>>,
    succs: Vec<Vec<usize>>,
    /// The block-version effects of each chunk, in op order.
    pub blocks_of_chunk: Vec<Vec<usize>>,
}

impl Graph {
    /// Builds the graph. Every edge of every model goes from an earlier effect to a later one
    /// (effects are created in op order), so effect index order is a topological order; this is
    /// checked here because the enumeration relies on it.
    pub fn new(p: &Persistence) -> Self {
        let mut graph = DiGraph::with_capacity(p.effects.len(), p.edges.len());
        let nodes: Vec<NodeIndex> = (0..p.effects.len()).map(|e| graph.add_node(e)).collect();
        let mut preds = vec![Vec::new(); p.effects.len()];
        let mut succs = vec![Vec::new(); p.effects.len()];
        for e in &p.edges {
            assert!(
                e.from < e.to,
                "edge {} -> {} ({}) goes backwards in op order",
                e.from,
                e.to,
                e.rule.id
            );
            graph.add_edge(nodes[e.from], nodes[e.to], e.rule);
            preds[e.to].push(e.from);
            succs[e.from].push(e.to);
        }
        for v in preds.iter_mut().chain(&mut succs) {
            v.sort_unstable();
            v.dedup();
        }
        let mut blocks_of_chunk = vec![Vec::new(); p.layout.chunks.len()];
        for (i, e) in p.effects.iter().enumerate() {
            if let unplug_model::EffectKind::Block { chunk, .. } = e.kind {
                blocks_of_chunk[chunk].push(i);
            }
        }
        Graph {
            graph,
            preds,
            succs,
            blocks_of_chunk,
        }
    }

    /// The effects that must be durable whenever `e` is (direct predecessors).
    pub fn preds(&self, e: usize) -> impl Iterator<Item = usize> + '_ {
        self.preds[e].iter().copied()
    }

    /// [`Self::preds`] as a slice.
    pub fn pred_slice(&self, e: usize) -> &[usize] {
        &self.preds[e]
    }

    /// The effects that cannot be durable unless `e` is (direct successors).
    pub fn succs(&self, e: usize) -> impl Iterator<Item = usize> + '_ {
        self.succs[e].iter().copied()
    }

    /// The edges into `e` with their rules.
    pub fn edges_into(&self, e: usize) -> Vec<(usize, &'static Rule)> {
        let n = NodeIndex::new(e);
        let mut v: Vec<(usize, &'static Rule)> = self
            .graph
            .edges_directed(n, Direction::Incoming)
            .map(|x| {
                (
                    self.graph[petgraph::visit::EdgeRef::source(&x)],
                    *x.weight(),
                )
            })
            .collect();
        v.sort_by_key(|(f, r)| (*f, r.id));
        v
    }
}
