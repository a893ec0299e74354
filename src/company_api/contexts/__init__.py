"""Contexts own the application's data and rules; routers and channels call them."""
