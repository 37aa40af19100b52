"""Conversation actions: every state change to contacts and messages lives in these modules.

``inbound``: storing what Meta sends (contacts, messages, statuses) and dispatching it.
``sending``: the one way anything in the project sends a WhatsApp message.
"""
