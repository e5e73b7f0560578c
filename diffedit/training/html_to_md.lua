-- Pandoc filter for diffedit's demo corpus: HTML manuals (DocBook, asciidoc, texinfo output) and Markdown
-- from POD -> plain Markdown prose. Navigation, tables of contents, footnotes, tables, images and raw HTML
-- are dropped; divs, spans and links are unwrapped; code blocks keep one fence language.

local DROP = {
  "banner", "toc", "navheader", "navfooter", "docnav", "footnotes", "legalnotice", "toc-title", "footer",
  "header", "nav-panel", "contents", "shortcontents", "navigation", "index", "footnote", "revhistory",
  "authorgroup", "copyright", "mini-toc", "index-entry-id", "printindex", "indexdiv", "table-of-contents",
}
local DROP_IDS = { banner = true, toc = true, footer = true, ["footer-text"] = true, toctitle = true }

local function has_any(el, names)
  for _, n in ipairs(names) do
    if el.classes:includes(n) then return true end
  end
  return false
end

function Div(el)
  if has_any(el, DROP) or DROP_IDS[el.identifier] then
    return {}
  end
  return el.content
end

function Table(el) return {} end
function RawBlock(el) return {} end
function RawInline(el) return {} end
function LineBlock(el) return {} end
function Figure(el) return {} end
function Image(el) return {} end
function Note(el) return {} end
function HorizontalRule(el) return {} end

function Span(el) return el.content end
function Link(el) return el.content end

function Code(el)
  el.attr = pandoc.Attr()
  return el
end

function CodeBlock(el)
  local lang = el.classes[1]
  if lang == nil or lang == "screen" or lang == "programlisting" or lang == "content" or lang == "example"
      or lang == "literallayout" or lang == "smallexample" or lang == "verbatim" then
    if el.text:match("^[$#] ") then lang = "shell" else lang = "text" end
  end
  el.attr = pandoc.Attr("", {lang})
  return el
end
