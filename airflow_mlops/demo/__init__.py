"""The demo domain: a synthetic credit-risk warehouse and the scripts that drive the demo."""
