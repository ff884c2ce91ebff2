-- Per-customer features as of the end of the partition day ($partition).
-- Only transactions strictly before the next day's midnight count: no future data.
WITH tx AS (
    SELECT customer_id, CAST(ts AS TIMESTAMP) AS ts, amount
    FROM transactions
    WHERE CAST(ts AS TIMESTAMP) >= CAST($partition AS DATE) - INTERVAL 29 DAY
      AND CAST(ts AS TIMESTAMP) < CAST($partition AS DATE) + INTERVAL 1 DAY
)
SELECT
    c.customer_id,
    c.income,
    c.debt,
    c.age,
    c.history_score,
    c.region,
    c.debt / NULLIF(c.income, 0) AS debt_to_income,
    count(t.ts) FILTER (WHERE t.ts >= CAST($partition AS DATE) - INTERVAL 6 DAY) AS txn_count_7d,
    coalesce(sum(t.amount) FILTER (WHERE t.ts >= CAST($partition AS DATE) - INTERVAL 6 DAY), 0)
        AS txn_amount_7d,
    count(t.ts) AS txn_count_30d,
    coalesce(sum(t.amount), 0) AS txn_amount_30d,
    coalesce(max(t.amount), 0) AS txn_max_amount_30d
FROM customers AS c
LEFT JOIN tx AS t USING (customer_id)
GROUP BY ALL
ORDER BY c.customer_id
