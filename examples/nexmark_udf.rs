//! Nexmark query 14 as its Flink script writes it, Java UDF included: the
//! program registers a Rust function under the Java class name, and the
//! script's `CREATE FUNCTION count_char AS 'com.github.nexmark.flink.udf.CountChar'`
//! binds it. The events come from the `nexmark` connector.
//!
//!     cargo run --example nexmark_udf

#[path = "udf/count_char.rs"]
mod count_char;

use vigil::engine::control::stop_channel;
use vigil::engine::metrics::Metrics;
use vigil::{RunOptions, StdoutSink, Vigil};

const SCRIPT: &str = "
CREATE TABLE datagen (
    event_type INT,
    bid ROW<auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
        `dateTime` TIMESTAMP(3), extra VARCHAR>,
    `dateTime` AS bid.`dateTime`,
    WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH ('connector' = 'nexmark', 'events.num' = '2000', 'first-event.rate' = '10');

CREATE VIEW bid AS
SELECT bid.auction, bid.bidder, bid.price, bid.channel, bid.url, `dateTime`, bid.extra
FROM datagen WHERE event_type = 2;

CREATE FUNCTION count_char AS 'com.github.nexmark.flink.udf.CountChar';

SELECT
    auction,
    bidder,
    0.908 * price as price,
    CASE
        WHEN HOUR(`dateTime`) >= 8 AND HOUR(`dateTime`) <= 18 THEN 'dayTime'
        WHEN HOUR(`dateTime`) <= 6 OR HOUR(`dateTime`) >= 20 THEN 'nightTime'
        ELSE 'otherTime'
    END AS bidTimeType,
    `dateTime`,
    extra,
    count_char(extra, 'c') AS c_counts
FROM bid
WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000;
";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut vigil = Vigil::new();
    vigil.register_udf(count_char::udf());
    let (_handle, stop) = stop_channel();
    vigil
        .run_script_into(
            SCRIPT,
            &|| Box::new(StdoutSink::new(vigil::OutputFormat::Table)),
            &Metrics::new(),
            stop,
            &RunOptions::default(),
        )
        .await
        .map_err(|e| match e {
            vigil::Error::Sql(e) => e.render("SCRIPT", SCRIPT),
            e => e.to_string(),
        })?;
    Ok(())
}
