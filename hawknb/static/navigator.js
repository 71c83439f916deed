function C(t,n){let e=document.createElement("div");e.className="hawknb-empty";let o=n&&String(n).trim()?String(n).trim():"there is no data";return e.dataset.emptyReason=o,e.textContent=`Nothing to show, because ${o}.`,t.appendChild(e),e}function j(t,n=1){return t==null||Number.isNaN(t)?"\u2013":`${(t*100).toFixed(n)}%`}function h(t){return String(t??"").replaceAll("&","&amp;").replaceAll("<","&lt;").replaceAll(">","&gt;").replaceAll('"',"&quot;").replaceAll("'","&#39;")}var N=`
.hawknb-root { font-family: var(--jp-ui-font-family, system-ui, sans-serif);
  font-size: var(--jp-ui-font-size1, 13px); color: var(--jp-ui-font-color0, #111);
  background: var(--jp-layout-color0, #fff); box-sizing: border-box; padding: 4px 2px;
  position: relative; }
.hawknb-root * { box-sizing: border-box; }
.hawknb-title { font-weight: 600; font-size: var(--jp-ui-font-size2, 15px); margin: 2px 0 6px; }
.hawknb-empty { padding: 14px 12px; border: 1px dashed var(--jp-border-color1, #bbb);
  color: var(--jp-ui-font-color2, #666); background: var(--jp-layout-color1, #fafafa);
  border-radius: 4px; }
.hawknb-error { padding: 6px 10px; color: var(--jp-error-color1, #d32f2f);
  border-left: 3px solid var(--jp-error-color1, #d32f2f); margin: 4px 0; }
.hawknb-toolbar { display: flex; gap: 6px; align-items: center; margin: 2px 0 4px;
  color: var(--jp-ui-font-color2, #666); font-size: var(--jp-ui-font-size0, 11px); }
.hawknb-toolbar button { font: inherit; color: var(--jp-ui-font-color1, #333);
  background: var(--jp-layout-color2, #eee); border: 1px solid var(--jp-border-color1, #bbb);
  border-radius: 3px; padding: 1px 8px; cursor: pointer; }
.hawknb-toolbar button:disabled { opacity: .5; cursor: default; }
.hawknb-legend { display: flex; gap: 12px; flex-wrap: wrap; font-size: var(--jp-ui-font-size0, 11px);
  color: var(--jp-ui-font-color2, #666); }
.hawknb-swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  margin-right: 4px; vertical-align: middle; }
`;function x(t,n){if(typeof document>"u"||document.getElementById(t))return;let e=document.createElement("style");e.id=t,e.textContent=n,document.head.appendChild(e)}function E(t,n,e,o=""){x("hawknb-base-css",N),o&&x(`${e}-css`,o),t.replaceChildren();let r=document.createElement("div");r.className=`hawknb-root ${e}`,t.appendChild(r);let s=n.get("title");if(s){let f=document.createElement("div");f.className="hawknb-title",f.textContent=s,r.appendChild(f)}let u=n.get("empty_reason");if(u)return r.dataset.empty="true",C(r,u),{root:r,body:null};r.dataset.empty="false";let l=document.createElement("div");return l.className="hawknb-body",r.appendChild(l),{root:r,body:l}}function A(t){let n=new Set(t.map(o=>o.id)),e=new Map;for(let o of t){let r=o.parent&&n.has(o.parent)?o.parent:"";e.has(r)||e.set(r,[]),e.get(r).push(o)}return e}function S(t,n){let e=new Map(t.map(u=>[u.id,u])),o=[],r=new Set,s=e.get(n);for(;s&&!r.has(s.id);)r.add(s.id),o.push(s),s=s.parent?e.get(s.parent):null;return o.reverse()}var $={done:"\u2714",skipped:"\u293C",warning:"\u26A0",failed:"\u2716",running:"\u2026",pending:"\u25CB"};function T(t){let n={};for(let e of t)n[e.status]=(n[e.status]||0)+1;return n}function I(t,n){let e=(t||[]).indexOf(n);return e<0?null:e}var F=`
/* the view stack is a flex row: its view takes the full width, not the width of its content
   (a canvas view sized by its own last measurement would stay narrow) */
.hawknb-view-stack > .lm-Widget { flex: 1 1 100%; min-width: 0; }
.hawknb-navigator .hawknb-crumbs { display: flex; flex-wrap: wrap; gap: 4px; align-items: center;
  margin: 0 0 6px; font-size: var(--jp-ui-font-size1, 13px); }
.hawknb-navigator .hawknb-crumb { cursor: pointer; color: var(--jp-content-link-color, #1976d2); }
.hawknb-navigator .hawknb-crumb:last-child { color: var(--jp-ui-font-color0, #111); font-weight: 600; }
.hawknb-navigator .hawknb-sep { color: var(--jp-ui-font-color3, #aaa); }
.hawknb-navigator ul { list-style: none; margin: 0; padding-left: 18px; }
.hawknb-navigator > .hawknb-body > ul { padding-left: 0; }
.hawknb-navigator .hawknb-step { display: flex; gap: 8px; align-items: baseline; padding: 3px 6px;
  border-radius: 3px; cursor: pointer; border: 1px solid transparent; }
.hawknb-navigator .hawknb-step:hover { background: var(--jp-layout-color2, #eee); }
.hawknb-navigator .hawknb-step[data-selected="true"] { background: var(--jp-layout-color2, #e8eef8);
  border-color: var(--jp-brand-color1, #1976d2); }
.hawknb-navigator .hawknb-icon { width: 1.2em; text-align: center; }
.hawknb-navigator [data-status="done"] .hawknb-icon { color: var(--jp-success-color1, #388e3c); }
.hawknb-navigator [data-status="warning"] .hawknb-icon { color: var(--jp-warn-color1, #f57c00); }
.hawknb-navigator [data-status="failed"] .hawknb-icon { color: var(--jp-error-color1, #d32f2f); }
.hawknb-navigator [data-status="skipped"] { color: var(--jp-ui-font-color2, #777); }
.hawknb-navigator .hawknb-decision { color: var(--jp-ui-font-color2, #666); flex: 1; }
.hawknb-navigator .hawknb-conf { font-variant-numeric: tabular-nums; color: var(--jp-ui-font-color2, #666); }
.hawknb-navigator .hawknb-hasview::after { content: " \u25B8"; color: var(--jp-brand-color1, #1976d2); }
`;function M({model:t,el:n}){let{root:e,body:o}=E(n,t,"hawknb-navigator",F),r=t.get("steps")||[];if(e.dataset.steps=String(r.length),!o)return()=>{};let s=A(r),u=new Set(t.get("with_views")||[]),l=document.createElement("div");l.className="hawknb-crumbs",o.appendChild(l);let f=new Map,m=c=>{t.set("selected_step",c),t.set("selected_view",I(t.get("with_views"),c)),t.save_changes()},y=c=>{let b=document.createElement("ul");for(let a of s.get(c)||[]){let p=document.createElement("li"),i=document.createElement("div");i.className="hawknb-step",i.dataset.stepId=a.id,i.dataset.status=a.status,i.setAttribute("role","treeitem"),i.tabIndex=0;let d=a.confidence==null?"":j(a.confidence,0);i.innerHTML=`<span class="hawknb-icon" title="${h(a.status)}">${$[a.status]||"\u2022"}</span><span class="hawknb-step-title${u.has(a.id)?" hawknb-hasview":""}">${h(a.title)}</span><span class="hawknb-decision">${h(a.decision)}</span><span class="hawknb-conf" title="confidence">${h(d)}</span>`,i.addEventListener("click",()=>m(a.id)),i.addEventListener("keydown",v=>{(v.key==="Enter"||v.key===" ")&&m(a.id)}),f.set(a.id,i),p.appendChild(i),s.has(a.id)&&p.appendChild(y(a.id)),b.appendChild(p)}return b},k=y("");k.setAttribute("role","tree"),o.appendChild(k);let U=T(r),w=document.createElement("div");w.className="hawknb-toolbar",w.textContent=Object.entries(U).map(([c,b])=>`${b} ${c}`).join(" \xB7 "),o.appendChild(w);let g=()=>{let c=t.get("selected_step")||"";e.dataset.selected=c;for(let[p,i]of f)i.dataset.selected=String(p===c);let b=S(r,c);l.replaceChildren();let a=document.createElement("span");a.className="hawknb-crumb",a.dataset.stepId="",a.textContent="Investigation",a.addEventListener("click",()=>m("")),l.appendChild(a);for(let p of b){let i=document.createElement("span");i.className="hawknb-sep",i.textContent="\u203A";let d=document.createElement("span");d.className="hawknb-crumb",d.dataset.stepId=p.id,d.textContent=p.title,d.addEventListener("click",()=>m(p.id)),l.append(i,d)}};return g(),t.on("change:selected_step",g),()=>t.off("change:selected_step",g)}var Z={render:M};export{Z as default};
