"""The WSGI side: a Flask app served by gunicorn."""
