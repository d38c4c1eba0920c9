"""The ASGI side: a FastAPI app served by uvicorn."""
