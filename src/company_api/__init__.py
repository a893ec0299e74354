"""The reference app: company chat (rooms with presence, private conversations) and a products
catalogue, built on Relaygate's public API only (``company_api.app:app``)."""
