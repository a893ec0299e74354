"""The reference app's HTTP routers: products, conversations and the dev demo page."""
