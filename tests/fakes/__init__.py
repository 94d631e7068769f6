"""Test doubles that speak real protocols: a fake WeChat API server and a simulated WeChat client."""
