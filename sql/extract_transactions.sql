-- Transactions of the 30 days ending with the partition day: [start, end).
SELECT transaction_id, customer_id, ts, amount, category
FROM transactions
WHERE ts >= :window_start AND ts < :window_end
ORDER BY transaction_id
