//! The graph from config: node types looked up in a registry, edges checked
//! (known nodes, known outputs, every output consumed, no cycles) before
//! anything runs.

use std::collections::{BTreeMap, HashMap};

use super::traits::{Node, NodeError, OUT};
use crate::config::{ConfigError, EngineConfig, NodeConfig};

type Factory<C> = Box<dyn Fn(&NodeConfig, &C) -> Result<Node, NodeError> + Send + Sync>;

/// Node types by name (`local_log`, `decode`, `parquet`, …), each with the
/// one function that builds it from its spec and the node's config `C`.
pub struct Registry<C> {
    factories: BTreeMap<String, Factory<C>>,
}

impl<C> Default for Registry<C> {
    fn default() -> Self {
        Self {
            factories: BTreeMap::new(),
        }
    }
}

impl<C> Registry<C> {
    pub fn register(
        &mut self,
        kind: &str,
        factory: impl Fn(&NodeConfig, &C) -> Result<Node, NodeError> + Send + Sync + 'static,
    ) {
        self.factories.insert(kind.to_string(), Box::new(factory));
    }

    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }

    /// Builds one node of `spec.kind` (what the planner does for each node
    /// of a graph; benchmarks use it to get the same nodes without one).
    pub fn build(&self, spec: &NodeConfig, config: &C) -> Result<Node, NodeError> {
        let factory = self
            .factories
            .get(&spec.kind)
            .ok_or_else(|| format!("unknown node type `{}`", spec.kind))?;
        factory(spec, config)
    }
}

/// A built node with its resolved inputs `(upstream index, output name)`.
pub struct PlannedNode {
    pub id: String,
    pub node: Node,
    pub inputs: Vec<(usize, &'static str)>,
}

fn outputs_of(node: &Node) -> &'static [&'static str] {
    match node {
        Node::Source(_) => &[OUT],
        Node::Operator(op) => op.outputs(),
        Node::Sink(_) => &[],
    }
}

/// Builds every node and orders them so each comes after its inputs.
pub fn plan<C: EngineConfig>(
    config: &C,
    registry: &Registry<C>,
) -> Result<Vec<PlannedNode>, ConfigError> {
    let specs = config.nodes();
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut built = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let key = format!("pipeline.nodes[{i}]");
        // Ids name files in the checkpoint store and the lake's staging.
        let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if spec.id.is_empty() || !spec.id.chars().all(plain) {
            return Err(ConfigError::key(
                format!("{key}.id"),
                format!(
                    "{:?} must be non-empty letters, digits, '_' or '-'",
                    spec.id
                ),
            ));
        }
        if index.insert(spec.id.as_str(), i).is_some() {
            return Err(ConfigError::key(
                format!("{key}.id"),
                format!("`{}` is used twice", spec.id),
            ));
        }
        let factory = registry.factories.get(&spec.kind).ok_or_else(|| {
            ConfigError::key(
                format!("{key}.type"),
                format!(
                    "unknown node type `{}`; known: {}",
                    spec.kind,
                    registry.kinds().collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        let node =
            factory(spec, config).map_err(|e| ConfigError::key(key.clone(), e.to_string()))?;
        built.push(node);
    }

    let mut inputs: Vec<Vec<(usize, &'static str)>> = vec![Vec::new(); specs.len()];
    let mut consumed: Vec<Vec<&'static str>> = vec![Vec::new(); specs.len()];
    for (i, spec) in specs.iter().enumerate() {
        let key = format!("pipeline.nodes[{i}].inputs");
        match (&built[i], spec.inputs.is_empty()) {
            (Node::Source(_), false) => {
                return Err(ConfigError::key(key, "a source takes no inputs"));
            }
            (Node::Source(_), true) => continue,
            (_, true) => {
                return Err(ConfigError::key(
                    key,
                    format!("`{}` needs at least one input", spec.id),
                ));
            }
            _ => {}
        }
        for input in &spec.inputs {
            let (up, output) = input.split_once('.').unwrap_or((input.as_str(), OUT));
            let &u = index
                .get(up)
                .ok_or_else(|| ConfigError::key(&key, format!("no node named `{up}`")))?;
            let output = outputs_of(&built[u])
                .iter()
                .find(|o| **o == output)
                .ok_or_else(|| {
                    ConfigError::key(
                        &key,
                        format!(
                            "`{up}` has no output `{output}`; it has: {}",
                            outputs_of(&built[u]).join(", ")
                        ),
                    )
                })?;
            if inputs[i].contains(&(u, *output)) {
                return Err(ConfigError::key(
                    &key,
                    format!("`{input}` is listed twice; its rows would arrive twice"),
                ));
            }
            inputs[i].push((u, *output));
            consumed[u].push(*output);
        }
    }
    for (u, spec) in specs.iter().enumerate() {
        for output in outputs_of(&built[u]) {
            if !consumed[u].contains(output) {
                let name = if *output == OUT {
                    spec.id.clone()
                } else {
                    format!("{}.{output}", spec.id)
                };
                return Err(ConfigError::key(
                    format!("pipeline.nodes[{u}]"),
                    format!(
                        "output `{name}` goes nowhere; add it to some node's inputs so its rows are not lost"
                    ),
                ));
            }
        }
    }

    // Kahn's algorithm: a cycle leaves nodes that never reach in-degree 0.
    let mut order = Vec::with_capacity(specs.len());
    let mut remaining: Vec<usize> = inputs.iter().map(Vec::len).collect();
    let mut ready: Vec<usize> = (0..specs.len()).filter(|i| remaining[*i] == 0).collect();
    while let Some(n) = ready.pop() {
        order.push(n);
        for (d, ins) in inputs.iter().enumerate() {
            for (u, _) in ins {
                if *u == n {
                    remaining[d] -= 1;
                    if remaining[d] == 0 {
                        ready.push(d);
                    }
                }
            }
        }
    }
    if order.len() != specs.len() {
        return Err(ConfigError::key("pipeline.nodes", "the graph has a cycle"));
    }

    let mut position = vec![0; specs.len()];
    for (pos, n) in order.iter().enumerate() {
        position[*n] = pos;
    }
    let mut slots: Vec<Option<Node>> = built.into_iter().map(Some).collect();
    Ok(order
        .iter()
        .map(|&n| PlannedNode {
            id: specs[n].id.clone(),
            node: slots[n].take().expect("each node is planned once"),
            inputs: inputs[n].iter().map(|(u, o)| (position[*u], *o)).collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;
    use crate::config::{CheckpointConfig, PipelineConfig};
    use crate::runtime::{Batch, Committer, Emitter, Operator, Sink, Source, SourcePoll};

    struct Reader;
    #[async_trait]
    impl Source for Reader {
        async fn restore(&mut self, _: &crate::checkpoint::Positions) -> Result<(), NodeError> {
            Ok(())
        }
        async fn poll(&mut self) -> Result<SourcePoll, NodeError> {
            Ok(SourcePoll::Idle)
        }
        fn position(&self) -> crate::checkpoint::Positions {
            Default::default()
        }
    }

    struct Splitter;
    #[async_trait]
    impl Operator for Splitter {
        fn outputs(&self) -> &'static [&'static str] {
            &[OUT, "rejects"]
        }
        async fn process(&mut self, batch: Batch, out: &mut Emitter) -> Result<(), NodeError> {
            out.emit(OUT, batch);
            Ok(())
        }
    }

    struct Writer;
    #[async_trait]
    impl Sink for Writer {
        async fn write(&mut self, _: Batch) -> Result<(), NodeError> {
            Ok(())
        }
        async fn pre_commit(&mut self, _: u64) -> Result<serde_json::Value, NodeError> {
            Ok(serde_json::Value::Null)
        }
        fn committer(&self) -> std::sync::Arc<dyn Committer> {
            unreachable!("planning never asks for a committer")
        }
    }

    /// A config that is only a graph.
    struct Graph(Vec<NodeConfig>, PipelineConfig, CheckpointConfig);

    impl EngineConfig for Graph {
        fn nodes(&self) -> Vec<NodeConfig> {
            self.0.clone()
        }
        fn pipeline(&self) -> &PipelineConfig {
            &self.1
        }
        fn checkpoint(&self) -> &CheckpointConfig {
            &self.2
        }
        fn checkpoint_store(&self) -> String {
            String::new()
        }
    }

    fn registry() -> Registry<Graph> {
        let mut r = Registry::default();
        r.register("reader", |_, _| Ok(Node::Source(Box::new(Reader))));
        r.register("splitter", |_, _| Ok(Node::Operator(Box::new(Splitter))));
        r.register("writer", |_, _| Ok(Node::Sink(Box::new(Writer))));
        r
    }

    fn config(nodes: &[(&str, &str, &[&str])]) -> Graph {
        let nodes = nodes
            .iter()
            .map(|(id, kind, inputs)| NodeConfig::new(id, kind, inputs))
            .collect();
        Graph(
            nodes,
            PipelineConfig::default(),
            CheckpointConfig::default(),
        )
    }

    fn error(nodes: &[(&str, &str, &[&str])]) -> String {
        match plan(&config(nodes), &registry()) {
            Ok(_) => panic!("plan accepted {nodes:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn orders_nodes_after_their_inputs() {
        let planned = plan(
            &config(&[
                ("sink", "writer", &["split", "split.rejects"]),
                ("split", "splitter", &["src"]),
                ("src", "reader", &[]),
            ]),
            &registry(),
        )
        .unwrap();
        let ids: Vec<_> = planned.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["src", "split", "sink"]);
        assert_eq!(planned[2].inputs, vec![(1, OUT), (1, "rejects")]);
    }

    #[test]
    fn refuses_graphs_that_would_lose_or_double_rows() {
        let e = error(&[
            ("src", "reader", &[]),
            ("split", "splitter", &["src"]),
            ("sink", "writer", &["split"]),
        ]);
        assert!(
            e.contains("split.rejects") && e.contains("goes nowhere"),
            "{e}"
        );
        let e = error(&[("src", "reader", &[]), ("sink", "writer", &["src", "src"])]);
        assert!(e.contains("listed twice"), "{e}");
        let e = error(&[("src", "reader", &[]), ("sink", "writer", &["nope"])]);
        assert!(
            e.contains("pipeline.nodes[1].inputs") && e.contains("no node named `nope`"),
            "{e}"
        );
        let e = error(&[("src", "reader", &[]), ("sink", "writer", &["src.rejects"])]);
        assert!(e.contains("has no output `rejects`"), "{e}");
        let e = error(&[("src", "teleporter", &[])]);
        assert!(
            e.contains("pipeline.nodes[0].type") && e.contains("unknown node type"),
            "{e}"
        );
        let e = error(&[
            ("src", "reader", &[]),
            ("a", "splitter", &["src", "b"]),
            ("b", "splitter", &["a", "a.rejects", "b.rejects"]),
            ("sink", "writer", &["b", "a.rejects"]),
        ]);
        assert!(e.contains("cycle"), "{e}");
    }
}
