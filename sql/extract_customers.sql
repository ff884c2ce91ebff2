-- Customers known on the partition day (no one who signed up later).
SELECT customer_id, income, debt, age, history_score, region, signup_date
FROM customers
WHERE signup_date <= :partition
ORDER BY customer_id
