//! Mini-batch aggregation (`table.exec.mini-batch.*`) changes how often a
//! group's result is updated, never the result: the same script with and
//! without it must leave the same table, with fewer changes on the way.

#[path = "support/compare.rs"]
mod compare;

use std::path::PathBuf;
use std::process::Command;

fn run(script: &str, name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("vigil-mini-batch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, script).expect("write script");
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["run", "--format", "json"])
        .arg(&path)
        .output()
        .expect("run vigil");
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn mini_batch_leaves_the_same_table_with_fewer_changes() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/orders_cl.jsonl");
    let query = format!(
        "CREATE TABLE Orders (order_id BIGINT, user_id STRING, product STRING, amount INT,
           price DECIMAL(10, 2), ts TIMESTAMP(3))
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
         SELECT n, COUNT(*) AS users, MAX(total) AS biggest, SUM(total) AS units
         FROM (SELECT user_id, COUNT(*) AS n, SUM(amount) AS total FROM Orders GROUP BY user_id)
         GROUP BY n;",
        data.display()
    );
    let per_row = run(&query, "per_row.sql");
    let batched = run(
        &format!(
            "SET 'table.exec.mini-batch.enabled' = 'true';
             SET 'table.exec.mini-batch.allow-latency' = '1 s';
             SET 'table.exec.mini-batch.size' = '1000';
             {query}"
        ),
        "batched.sql",
    );
    let fold = |t: &str| {
        let table = compare::final_table(t, None).expect("a changelog");
        let mut rows: Vec<String> = table.lines().map(str::to_string).collect();
        rows.sort();
        rows
    };
    assert_eq!(fold(&per_row), fold(&batched), "the result table");
    let changes = |t: &str| t.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(
        changes(&batched) < changes(&per_row),
        "{} changes with mini-batch, {} without",
        changes(&batched),
        changes(&per_row)
    );
}
