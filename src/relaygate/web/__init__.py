"""The HTTP layer: FastAPI app factory, middleware, routers."""
