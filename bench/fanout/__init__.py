"""The fan-out benchmark (``bench/fanout.py``): its Django project, baseline servers,
writer and WebSocket load client."""
