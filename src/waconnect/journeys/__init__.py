"""Journeys: automated WhatsApp flows, one path per profile through a graph of nodes."""
