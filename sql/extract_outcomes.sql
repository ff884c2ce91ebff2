-- Labels of the demo credit-risk model: whether each customer defaulted.
SELECT customer_id, defaulted
FROM outcomes
ORDER BY customer_id
