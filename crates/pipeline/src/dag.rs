//! Wiring steps to their upstream steps and ordering them (the step graph).

use std::collections::HashMap;

use serde_json::Value;

use crate::parse::kind;
use crate::{Problem, Problems, Step, StepMode, did_you_mean};

/// What a step wrote about its upstream steps, before wiring.
pub(crate) struct Wiring {
    /// Whether the step has a `needs` key (`needs: []` turns the implicit chain off).
    pub(crate) needs_given: bool,
    /// The step's `inputs`, as written.
    pub(crate) inputs: Option<Value>,
}

/// Turns `inputs` references into dependencies and table inputs, and gives a step that reads
/// a table but names no upstream step the nearest earlier step that produces one (the
/// implicit chain of Osiris' compiler).
pub(crate) fn wire(
    steps: &mut [Step],
    wiring: &[Wiring],
    incomplete: &std::collections::BTreeSet<String>,
    problems: &mut Problems,
) {
    let ids: Vec<String> = steps.iter().map(|s| s.id.clone()).collect();
    for i in 0..steps.len() {
        let (earlier, rest) = steps.split_at_mut(i);
        let step = &mut rest[0];
        let wiring = &wiring[i];
        if let Some(inputs) = &wiring.inputs {
            for (key, reference) in input_references(inputs, &ids, &step.id, problems) {
                if reference == step.id {
                    problems.push(Problem::step_error(
                        &step.id,
                        Some(&key),
                        "a step cannot read its own table",
                    ));
                } else if !ids.contains(&reference) {
                    let hint = did_you_mean(&reference, ids.iter().map(String::as_str))
                        .map(|s| format!("; did you mean '{s}'?"))
                        .unwrap_or_else(|| format!("; steps are: {}", ids.join(", ")));
                    problems.push(Problem::step_error(
                        &step.id,
                        Some(&key),
                        format!("unknown step '{reference}'{hint}"),
                    ));
                } else {
                    if !step.needs.contains(&reference) {
                        step.needs.push(reference.clone());
                    }
                    if !step.inputs.contains(&reference) {
                        step.inputs.push(reference);
                    }
                }
            }
        }
        let reads_table = matches!(step.mode, StepMode::Transform | StepMode::Write);
        if wiring.needs_given
            || wiring.inputs.is_some()
            || !reads_table
            || incomplete.contains(&step.id)
        {
            continue;
        }
        if let Some(source) = earlier.iter().rev().find(|s| {
            matches!(s.mode, StepMode::Read | StepMode::Transform) && !incomplete.contains(&s.id)
        }) {
            problems.push(
                Problem::step_error(
                    &step.id,
                    Some("needs"),
                    format!(
                        "no `needs`: step '{}' reads the table of step '{}', the nearest earlier step that produces one (as Osiris chains steps); write `needs: [{}]` to say so, or `needs: []` for no input",
                        step.id, source.id, source.id
                    ),
                )
                .warning(),
            );
            step.needs.push(source.id.clone());
        }
    }
}

/// The steps an `inputs` value refers to, each with the key it is written under:
/// `{df: "${extract.df}"}` (Osiris' form), or a list of step ids or references.
fn input_references(
    inputs: &Value,
    ids: &[String],
    step: &str,
    problems: &mut Problems,
) -> Vec<(String, String)> {
    let entries: Vec<(String, &Value)> = match inputs {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (format!("inputs.{k}"), v))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("inputs[{i}]"), v))
            .collect(),
        Value::String(_) => vec![("inputs".to_owned(), inputs)],
        other => {
            problems.push(Problem::step_error(
                step,
                Some("inputs"),
                format!(
                    "must map names to step outputs like `df: \"${{extract.df}}\"`, found {}",
                    kind(other)
                ),
            ));
            return Vec::new();
        }
    };
    let mut references = Vec::new();
    for (key, value) in entries {
        let Some(text) = value.as_str() else {
            problems.push(Problem::step_error(
                step,
                Some(&key),
                format!(
                    "must name a step's output like \"${{extract.df}}\", found {}",
                    kind(value)
                ),
            ));
            continue;
        };
        let mut found = false;
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else { break };
            let inner = after[..end].trim();
            // `${extract.df}` names step `extract`; ids may hold dots themselves.
            let target = if ids.iter().any(|id| id == inner) {
                inner
            } else {
                inner.rsplit_once('.').map_or(inner, |(id, _)| id)
            };
            references.push((key.clone(), target.to_owned()));
            found = true;
            rest = &after[end + 1..];
        }
        if !found {
            if ids.iter().any(|id| id == text) {
                references.push((key, text.to_owned()));
            } else {
                problems.push(
                    Problem::step_error(
                        step,
                        Some(&key),
                        format!(
                            "{text:?} names no step output; write `\"${{<step id>.df}}\"` (ignored)"
                        ),
                    )
                    .warning(),
                );
            }
        }
    }
    references
}

pub(crate) fn check_needs(steps: &[Step], problems: &mut Problems) {
    let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
    for step in steps {
        let mut seen = Vec::new();
        for need in &step.needs {
            if need == &step.id {
                problems.push(Problem::step_error(
                    &step.id,
                    Some("needs"),
                    "a step cannot need itself",
                ));
            } else if !ids.contains(&need.as_str()) {
                let hint = did_you_mean(need, ids.iter().copied())
                    .map(|s| format!("; did you mean '{s}'?"))
                    .unwrap_or_else(|| format!("; steps are: {}", ids.join(", ")));
                problems.push(Problem::step_error(
                    &step.id,
                    Some("needs"),
                    format!("unknown step '{need}'{hint}"),
                ));
            } else if seen.contains(&need) {
                problems.push(
                    Problem::step_error(
                        &step.id,
                        Some("needs"),
                        format!("'{need}' is listed twice"),
                    )
                    .warning(),
                );
            }
            seen.push(need);
        }
    }
    if !problems.has_errors()
        && let Err(cycle) = execution_order(steps)
    {
        problems.push(cycle);
    }
}

/// Orders steps so that every step comes after the steps it needs; among independent steps
/// the file order is kept. A cycle is an error naming the steps in it.
pub fn execution_order(steps: &[Step]) -> Result<Vec<usize>, Problem> {
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut indegree = vec![0usize; steps.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, step) in steps.iter().enumerate() {
        for need in &step.needs {
            if let Some(&j) = index.get(need.as_str())
                && j != i
                && !dependents[j].contains(&i)
            {
                indegree[i] += 1;
                dependents[j].push(i);
            }
        }
    }
    // Kahn's algorithm, always taking the earliest ready step in file order.
    let mut ready: std::collections::BTreeSet<usize> =
        (0..steps.len()).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(steps.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &d in &dependents[i] {
            indegree[d] -= 1;
            if indegree[d] == 0 {
                ready.insert(d);
            }
        }
    }
    if order.len() == steps.len() {
        return Ok(order);
    }
    let remaining: Vec<usize> = (0..steps.len()).filter(|i| indegree[*i] > 0).collect();
    let cycle = find_cycle(steps, &index, &remaining);
    let first = &steps[cycle[0]].id;
    let path: Vec<&str> = cycle
        .iter()
        .chain(std::iter::once(&cycle[0]))
        .map(|&i| steps[i].id.as_str())
        .collect();
    Err(Problem::step_error(
        first,
        Some("needs"),
        format!("`needs` form a cycle: {}", path.join(" -> ")),
    ))
}

/// Walks `needs` edges among the steps left after Kahn's algorithm until a step repeats.
fn find_cycle(steps: &[Step], index: &HashMap<&str, usize>, remaining: &[usize]) -> Vec<usize> {
    let mut path = vec![remaining[0]];
    loop {
        let current = *path.last().expect("path is never empty");
        let next = steps[current]
            .needs
            .iter()
            .filter_map(|n| index.get(n.as_str()).copied())
            .find(|j| remaining.contains(j))
            .expect("every step left in a cycle needs another step left");
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut cycle = path.split_off(pos);
            // Report in data-flow order: upstream first.
            cycle.reverse();
            return cycle;
        }
        path.push(next);
    }
}
