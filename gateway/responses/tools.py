"""Responses API tools as chat completions function tools, and calls back.

Codex declares its tools at the top level (`tools`) or, in newer versions, in
an `additional_tools` input item, grouped in namespaces. Function tools map to
chat functions; freeform `custom` tools become a function with one string
argument, `input`, and their calls are turned back into `custom_tool_call`
items. Built-in tools (web_search, local_shell, …) have no chat equivalent and
are left out.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import orjson

from gateway.responses.ids import new_id

log = logging.getLogger(__name__)
DEFAULT_NAMESPACE = "functions"
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


@dataclass(frozen=True, slots=True)
class ToolSpec:
    kind: str  # "function" or "custom"
    name: str
    namespace: str | None
    chat: dict  # the chat completions tool


def chat_name(name: str, namespace: str | None) -> str:
    if namespace in (None, DEFAULT_NAMESPACE):
        return name
    return _UNSAFE.sub("_", f"{namespace}__{name}")[:64]


class ToolMap:
    def __init__(self, body: dict, items: list) -> None:
        self.specs: dict[str, ToolSpec] = {}
        self._add_all(body.get("tools") or (), None)
        for item in items:
            if isinstance(item, dict) and item.get("type") == "additional_tools":
                self._add_all(item.get("tools") or (), None)

    def _add_all(self, tools: object, namespace: str | None) -> None:
        for tool in tools if isinstance(tools, list | tuple) else ():
            if not isinstance(tool, dict):
                continue
            kind = tool.get("type")
            if kind == "namespace":
                self._add_all(tool.get("tools"), tool.get("name"))
            elif kind in ("function", "custom") and tool.get("name"):
                self._add(tool, kind, namespace)
            else:
                log.debug("left out a tool of type %s", kind)

    def _add(self, tool: dict, kind: str, namespace: str | None) -> None:
        name = chat_name(tool["name"], namespace)
        if kind == "function":
            parameters = tool.get("parameters") or {"type": "object", "properties": {}}
            function = {"name": name, "parameters": parameters}
            if tool.get("strict") is not None:
                function["strict"] = tool["strict"]
        else:
            syntax = (tool.get("format") or {}).get("definition")
            hint = "The tool's whole input, as free text."
            if syntax:
                hint += f" It must match this grammar:\n{syntax}"
            function = {
                "name": name,
                "parameters": {
                    "type": "object",
                    "properties": {"input": {"type": "string", "description": hint}},
                    "required": ["input"],
                },
            }
        if tool.get("description"):
            function["description"] = tool["description"]
        self.specs[name] = ToolSpec(
            kind, tool["name"], namespace, {"type": "function", "function": function}
        )

    def chat_tools(self) -> list[dict]:
        return [spec.chat for spec in self.specs.values()]

    def is_custom(self, name: str) -> bool:
        spec = self.specs.get(name)
        return spec is not None and spec.kind == "custom"

    def output_item(
        self,
        call_id: str,
        name: str,
        arguments: str,
        *,
        item_id: str | None = None,
        status: str = "completed",
    ) -> dict:
        """The Responses output item for a chat tool call."""
        spec = self.specs.get(name)
        if spec is not None and spec.kind == "custom":
            return {
                "id": item_id or new_id("ctc"),
                "type": "custom_tool_call",
                "status": status,
                "call_id": call_id,
                "name": spec.name,
                "input": custom_input(arguments) if status == "completed" else "",
            }
        item = {
            "id": item_id or new_id("fc"),
            "type": "function_call",
            "status": status,
            "call_id": call_id,
            "name": spec.name if spec else name,
            "arguments": arguments,
        }
        if spec is not None and spec.namespace not in (None, DEFAULT_NAMESPACE):
            item["namespace"] = spec.namespace
        return item


def custom_input(arguments: str) -> str:
    """The free text a model put in a custom tool's `input` argument."""
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(parsed, dict) and isinstance(parsed.get("input"), str):
        return parsed["input"]
    return arguments
