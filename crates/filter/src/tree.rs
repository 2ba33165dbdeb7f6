//! Matching one alternative against an event.
//!
//! The alternative's dotted paths form a tree that is walked down the event once: fields that
//! share a prefix share the walk, and when the walk meets an array every field below is matched
//! inside the same element (AWS's "array consistency": `{"a": {"b": [1], "c": [2]}}` does not
//! match `{"a": [{"b": 1}, {"c": 2}]}`).
//!
//! AWS flattens events into dotted names, so `{"a.b": 1}` in an event also answers the path
//! `a.b`. The walk keeps every object it passed through (a stack of frames on the call stack)
//! and looks the rest of the path up in each, so such keys are found without allocating.

use crate::flatten::Field;
use crate::ops::Leaf;
use serde_json::{Map, Value};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub(crate) struct Tree {
    root: Node,
}

#[derive(Debug, Clone)]
struct Node {
    /// The dotted path of the field whose insertion created this node; this node's own path is
    /// its first `depth` segments. Shared between the nodes of one field, so a deep path costs
    /// linear memory.
    path: Arc<str>,
    /// Byte offset in `path` where each of its segments starts.
    starts: Arc<[usize]>,
    /// How many segments lead here (0 at the root).
    depth: usize,
    leaf: Option<Arc<Leaf>>,
    children: Vec<Node>,
    /// Whether some field at or below this node needs a value. Only such fields pick one
    /// element of an event array; absences alone are checked against every element, as AWS
    /// does when no earlier field has narrowed the array down.
    needs_value: bool,
}

/// An event object the walk passed through, and how many path segments led to it.
struct Frame<'f, 'e> {
    object: &'e Map<String, Value>,
    depth: usize,
    below: Option<&'f Frame<'f, 'e>>,
}

impl Tree {
    pub(crate) fn build(fields: &[Field]) -> Tree {
        let mut root = Node::new("".into(), Arc::new([]), 0);
        for (path, leaf) in fields {
            root.insert(path, Arc::clone(leaf));
        }
        root.settle();
        Tree { root }
    }

    pub(crate) fn matches(&self, event: &Value) -> bool {
        match event {
            Value::Object(object) => self.root.children_match(Some(&Frame { object, depth: 0, below: None })),
            _ => self.root.children_match(None),
        }
    }
}

impl Node {
    fn new(path: Arc<str>, starts: Arc<[usize]>, depth: usize) -> Node {
        Node { path, starts, depth, leaf: None, children: Vec::new(), needs_value: false }
    }

    fn insert(&mut self, path: &str, leaf: Arc<Leaf>) {
        let starts: Arc<[usize]> = std::iter::once(0)
            .chain(path.match_indices('.').map(|(dot, _)| dot + 1))
            .collect();
        let shared: Arc<str> = path.into();
        let mut node = self;
        for depth in 1..=starts.len() {
            let wanted = Node::new(Arc::clone(&shared), Arc::clone(&starts), depth);
            let index = match node.children.iter().position(|child| child.segment() == wanted.segment()) {
                Some(index) => index,
                None => {
                    node.children.push(wanted);
                    node.children.len() - 1
                }
            };
            node = &mut node.children[index];
        }
        node.leaf = Some(leaf);
    }

    /// Computes `needs_value` bottom-up.
    fn settle(&mut self) -> bool {
        let below = self.children.iter_mut().fold(false, |any, child| child.settle() | any);
        self.needs_value = below || self.leaf.as_ref().is_some_and(|leaf| leaf.needs_value());
        self.needs_value
    }

    /// Where this node's own path ends in `path`.
    fn end(&self) -> usize {
        self.starts.get(self.depth).map_or(self.path.len(), |&next| next - 1)
    }

    /// The key that holds this node's value in an object reached after `depth` segments.
    fn key(&self, depth: usize) -> &str {
        &self.path[self.starts[depth]..self.end()]
    }

    fn segment(&self) -> &str {
        match self.depth {
            0 => "",
            depth => self.key(depth - 1),
        }
    }

    fn children_match(&self, frames: Option<&Frame>) -> bool {
        self.children.iter().all(|child| child.matches(frames))
    }

    fn matches(&self, frames: Option<&Frame>) -> bool {
        if let Some(leaf) = &self.leaf {
            if !self.leaf_matches(leaf, frames) {
                return false;
            }
        }
        self.children.is_empty() || self.descend(frames, frames)
    }

    fn leaf_matches(&self, leaf: &Leaf, frames: Option<&Frame>) -> bool {
        let mut present = false;
        let mut frame = frames;
        while let Some(f) = frame {
            if let Some(value) = f.object.get(self.key(f.depth)) {
                let hit = any_scalar(value, &mut |v| {
                    present = true;
                    leaf.wants_any_value() || leaf.accepts(v)
                });
                if hit {
                    return true;
                }
            }
            frame = f.below;
        }
        !present && leaf.accepts_absence()
    }

    /// Looks this node up in each `pending` frame, stacking the objects found onto `stack`,
    /// then matches the children against the grown stack.
    fn descend<'e>(&self, mut pending: Option<&Frame<'_, 'e>>, stack: Option<&Frame<'_, 'e>>) -> bool {
        // Frames without a value here are the common case; looping over them (instead of
        // recursing) keeps the stack depth linear in the path length.
        while let Some(frame) = pending {
            match frame.object.get(self.key(frame.depth)) {
                Some(Value::Object(object)) => {
                    let top = Frame { object, depth: self.depth, below: stack };
                    return self.descend(frame.below, Some(&top));
                }
                Some(Value::Array(items)) => return self.descend_array(items, frame.below, stack),
                _ => pending = frame.below,
            }
        }
        self.children_match(stack)
    }

    fn descend_array<'e>(&self, items: &'e [Value], pending: Option<&Frame<'_, 'e>>, stack: Option<&Frame<'_, 'e>>) -> bool {
        let mut element_matches = |element: Option<&'e Map<String, Value>>| match element {
            Some(object) => {
                let top = Frame { object, depth: self.depth, below: stack };
                self.descend(pending, Some(&top))
            }
            None => self.descend(pending, stack),
        };
        if self.needs_value {
            any_element(items, &mut element_matches)
        } else {
            !any_element(items, &mut |element| !element_matches(element))
        }
    }
}

/// Calls `visit` on the scalars of `value` (arrays flattened, objects skipped) until it returns
/// true; returns whether it did.
fn any_scalar(value: &Value, visit: &mut dyn FnMut(&Value) -> bool) -> bool {
    match value {
        Value::Array(items) => items.iter().any(|item| any_scalar(item, visit)),
        Value::Object(_) => false,
        scalar => visit(scalar),
    }
}

/// Calls `visit` on each object element of an array (nested arrays flattened) and once with
/// `None` standing for all other elements, or for an empty array; stops at the first true.
fn any_element<'e>(items: &'e [Value], visit: &mut dyn FnMut(Option<&'e Map<String, Value>>) -> bool) -> bool {
    fn objects<'e>(
        items: &'e [Value],
        visit: &mut dyn FnMut(Option<&'e Map<String, Value>>) -> bool,
        others: &mut bool,
    ) -> bool {
        for item in items {
            let hit = match item {
                Value::Object(object) => visit(Some(object)),
                Value::Array(inner) if !inner.is_empty() => objects(inner, visit, others),
                _ => {
                    *others = true;
                    false
                }
            };
            if hit {
                return true;
            }
        }
        false
    }
    let mut others = items.is_empty();
    objects(items, visit, &mut others) || (others && visit(None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flatten::flatten;
    use crate::json::Json;
    use serde_json::json;

    /// Matches with the first alternative of a pattern.
    fn hit(pattern: &str, event: Value) -> bool {
        let rules = flatten(&Json::parse(pattern).unwrap()).unwrap();
        Tree::build(&rules[0]).matches(&event)
    }

    #[test]
    fn fields_are_anded() {
        let p = r#"{"source": ["order"], "detail": {"state": ["done"]}}"#;
        assert!(hit(p, json!({"source": "order", "detail": {"state": "done"}})));
        assert!(!hit(p, json!({"source": "order", "detail": {"state": "new"}})));
        assert!(!hit(p, json!({"detail": {"state": "done"}})));
    }

    #[test]
    fn event_arrays_match_on_any_element() {
        let p = r#"{"resources": ["b", "z"]}"#;
        assert!(hit(p, json!({"resources": ["a", "b"]})));
        assert!(!hit(p, json!({"resources": ["a"]})));
        assert!(hit(p, json!({"resources": [["x", ["z"]]]})), "nested arrays are flattened");
    }

    #[test]
    fn fields_under_an_array_come_from_one_element() {
        let p = r#"{"a": {"b": [1], "c": [2]}}"#;
        assert!(hit(p, json!({"a": [{"b": 1, "c": 3}, {"b": 1, "c": 2}]})));
        assert!(!hit(p, json!({"a": [{"b": 1}, {"c": 2}]})));
        let deep = r#"{"a": {"x": {"b": [1]}, "y": {"c": [2]}}}"#;
        assert!(hit(deep, json!({"a": [{"x": [{"b": 1}], "y": [{"c": 2}]}]})), "different arrays are independent");
    }

    #[test]
    fn exists_only_sees_leaf_values() {
        let exists = r#"{"detail": {"state": [{"exists": true}]}}"#;
        assert!(hit(exists, json!({"detail": {"state": null}})));
        assert!(!hit(exists, json!({"detail": {"state": {"x": 1}}})), "an object is not a leaf value");
        assert!(!hit(exists, json!({"detail": {"state": []}})));
        let absent = r#"{"detail": {"c-count": [{"exists": false}]}}"#;
        assert!(hit(absent, json!({"detail": {"c-count": {"c1": 100}}})));
        assert!(hit(absent, json!({"detail": {}})));
        assert!(hit(absent, json!({})));
        assert!(!hit(absent, json!({"detail": {"c-count": 0}})));
    }

    #[test]
    fn absence_under_an_array_holds_for_every_element() {
        let absent = r#"{"items": {"deleted": [{"exists": false}]}}"#;
        assert!(!hit(absent, json!({"items": [{"deleted": true}, {"id": 2}]})));
        assert!(hit(absent, json!({"items": [{"id": 1}, {"id": 2}]})));
        assert!(hit(absent, json!({"items": []})));
        let pinned = r#"{"items": {"id": [2], "deleted": [{"exists": false}]}}"#;
        assert!(hit(pinned, json!({"items": [{"id": 1, "deleted": true}, {"id": 2}]})), "checked in the element id=2 picked");
        assert!(!hit(pinned, json!({"items": [{"id": 2, "deleted": true}]})));
    }

    #[test]
    fn dotted_event_keys_answer_dotted_paths() {
        let p = r#"{"a": {"b": [1], "c": [2]}}"#;
        assert!(hit(p, json!({"a.b": 1, "a": {"c": 2}})));
        assert!(hit(p, json!({"a.b": 1, "a.c": 2})));
        assert!(!hit(p, json!({"a.b": 1})));
        assert!(hit(r#"{"x.y": [true]}"#, json!({"x": {"y": true}})));
        assert!(!hit(r#"{"a": {"b": [{"exists": false}]}}"#, json!({"a.b": 1})));
    }

    #[test]
    fn non_object_events_have_no_fields() {
        assert!(!hit(r#"{"a": [1]}"#, json!([{"a": 1}])));
        assert!(hit(r#"{"a": [{"exists": false}]}"#, json!("text")));
    }

    #[test]
    fn the_deepest_allowed_path_matches_without_exhausting_the_stack() {
        let depth = crate::flatten::MAX_PATH_SEGMENTS;
        let pattern = format!(r#"{{"{}": [1]}}"#, vec!["a"; depth].join("."));
        let mut event = json!(1);
        for _ in 0..depth {
            event = json!({ "a": event });
        }
        // Test threads get a 2 MiB stack, the size of a tokio worker's.
        assert!(hit(&pattern, event));
        assert!(hit(&pattern.replace("[1]", r#"[{"exists": false}]"#), json!({})));
    }

    #[test]
    fn a_path_can_be_both_a_field_and_a_parent() {
        let p = r#"{"a": [{"exists": true}], "a.b": [1]}"#;
        assert!(!hit(p, json!({"a": {"b": 1}})), "a is an object, so it has no value of its own");
        assert!(hit(p, json!({"a": [5, {"b": 1}]})));
    }
}
