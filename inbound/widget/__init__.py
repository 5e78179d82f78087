"""The web chat widget: public API, visitor tokens, live socket, and the JS loader + chat UI."""
