"""Anthropic's Messages API (/v1/messages), for Claude-style clients."""
