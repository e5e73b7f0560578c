-- Pandoc filter for diffedit's demo corpus: Sphinx reST from python3.11-doc -> plain Markdown prose.
-- Index/raw material is dropped, admonitions and directives are unwrapped, tables are dropped,
-- code blocks get a fence language so they come out fenced.

local DROP = {
  "index", "toctree", "only", "title", "versionadded", "versionchanged", "deprecated", "deprecated-removed",
  "availability", "module", "moduleauthor", "sectionauthor", "audit-event", "impl-detail", "currentmodule",
  "highlight", "productionlist", "opcode", "cmdoption", "envvar", "option", "describe", "c:function",
  "c:macro", "c:type", "c:member", "c:var", "testsetup", "testcleanup", "tabularcolumns", "rubric",
}
local API = {
  "function", "method", "class", "attribute", "data", "exception", "decorator", "classmethod",
  "staticmethod", "coroutinemethod", "coroutinefunction", "abstractmethod", "decoratormethod",
}

local function has_any(el, names)
  for _, n in ipairs(names) do
    if el.classes:includes(n) then return true end
  end
  return false
end

function Div(el)
  if has_any(el, DROP) then
    return {}
  end
  if has_any(el, API) and #el.content > 0 and el.content[1].t == "Para" then
    -- the first paragraph is the object's signature: drop it, keep the description
    el.content:remove(1)
  end
  return el.content
end

function Table(el) return {} end
function RawBlock(el) return {} end
function RawInline(el) return {} end
function LineBlock(el) return {} end
function DefinitionList(el) return {} end
function Figure(el) return {} end
function Image(el) return {} end

function Span(el) return el.content end

function Code(el)
  el.text = el.text:gsub("^[!~]", "")
  el.attr = pandoc.Attr()
  return el
end

function Link(el) return el.content end

function CodeBlock(el)
  if #el.classes == 0 then
    if el.text:match("^>>>") then
      el.classes = {"pycon"}
    elseif el.text:match("^%$ ") then
      el.classes = {"shell"}
    else
      el.classes = {"python"}
    end
  end
  el.attr = pandoc.Attr("", {el.classes[1]})
  return el
end
