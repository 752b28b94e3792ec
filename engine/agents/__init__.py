"""Agents: SOPs as MCP tools and tool definitions for agent hosts."""
