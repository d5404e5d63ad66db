"""WebRTC negotiation service: offers and answers, ICE config, a registry of live peers.

Generic: it is handed a callback that attaches media to each new peer and
never imports the media server.
"""
