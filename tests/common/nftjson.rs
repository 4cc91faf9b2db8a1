//! Normalised `nft -j list table` output, for comparing two kernels' tables:
//! metainfo and every `handle` dropped, counters zeroed, objects sorted by
//! kind and name (rules keep their order inside their chain), set elements
//! sorted.

use serde_json::Value;

/// `nft -j list table inet NAME`, normalised. Err(stderr) when nft fails.
pub fn table(name: &str) -> Result<Vec<Value>, String> {
    let out = super::nft(&["-j", "list", "table", "inet", name], None)?;
    Ok(normalise(&out))
}

/// Normalise the JSON text nft printed.
pub fn normalise(json: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(json).expect("nft printed JSON");
    let items = v["nftables"].as_array().cloned().unwrap_or_default();
    let mut objects = Vec::new();
    let mut rule_index = std::collections::BTreeMap::<String, usize>::new();
    for mut item in items {
        if item.get("metainfo").is_some() {
            continue;
        }
        scrub(&mut item);
        let (kind, body) = {
            let o = item.as_object().expect("object");
            let (k, b) = o.iter().next().expect("one key");
            (k.clone(), b.clone())
        };
        let name = body["name"].as_str().unwrap_or("").to_string();
        let key = if kind == "rule" {
            let chain = body["chain"].as_str().unwrap_or("").to_string();
            let i = rule_index.entry(chain.clone()).or_default();
            *i += 1;
            format!("rule/{chain}/{:08}", *i)
        } else {
            format!("{kind}/{name}")
        };
        objects.push((key, item));
    }
    objects.sort_by(|a, b| a.0.cmp(&b.0));
    objects.into_iter().map(|(_, v)| v).collect()
}

fn scrub(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.remove("handle");
            if let Some(Value::Object(c)) = o.get_mut("counter") {
                c.insert("packets".into(), 0.into());
                c.insert("bytes".into(), 0.into());
            }
            if let Some(Value::Array(elems)) = o.get_mut("elem") {
                elems.sort_by_key(|e| e.to_string());
            }
            for (_, x) in o.iter_mut() {
                scrub(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(scrub),
        _ => {}
    }
}

/// Pretty text of normalised objects, one per line, for readable diffs.
pub fn lines(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|o| o.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Ok when the netlink-made table (`ours`) and the one `nft -f` made from
/// `script` (`theirs`) are the same; else Err with both and the script.
pub fn same(ours: &[Value], theirs: &[Value], script: &str) -> Result<(), String> {
    let (a, b) = (lines(ours), lines(theirs));
    if a != b {
        return Err(format!(
            "netlink:\n{a}\n\nnft -f:\n{b}\n\nscript:\n{script}"
        ));
    }
    Ok(())
}
