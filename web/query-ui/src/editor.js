// The PromQL editor: CodeMirror 6 with codemirror-promql's parser, highlighting, linting and
// autocompletion fed by the page's completion client.

import { EditorState, Prec } from '@codemirror/state';
import { EditorView, drawSelection, keymap, placeholder } from '@codemirror/view';
import { defaultKeymap, history, historyKeymap, insertNewlineAndIndent } from '@codemirror/commands';
import { autocompletion, closeBrackets, closeBracketsKeymap } from '@codemirror/autocomplete';
import { bracketMatching, defaultHighlightStyle, syntaxHighlighting } from '@codemirror/language';
import { lintKeymap } from '@codemirror/lint';
import { PromQLExtension } from '@prometheus-io/codemirror-promql';

// createEditor puts an editor holding doc into parent. Enter runs the query (Shift-Enter starts a new
// line), except while the completion list is open, where it picks the selected item: the completion
// keymap has the highest precedence and declines Enter when no list is open.
export function createEditor(parent, { doc, client, onRun, onChange }) {
  const promql = new PromQLExtension().setComplete({ remote: client });
  const run = () => {
    onRun();
    return true;
  };
  const state = EditorState.create({
    doc,
    extensions: [
      history(),
      drawSelection(),
      closeBrackets(),
      bracketMatching(),
      autocompletion({ icons: false }),
      syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
      placeholder('PromQL expression, e.g. rate(http_requests_total[5m])'),
      EditorView.lineWrapping,
      EditorView.contentAttributes.of({ 'aria-label': 'PromQL expression' }),
      Prec.high(
        keymap.of([
          { key: 'Enter', run },
          { key: 'Mod-Enter', run },
          { key: 'Shift-Enter', run: insertNewlineAndIndent },
        ]),
      ),
      keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...historyKeymap, ...lintKeymap]),
      promql.asExtension(),
      EditorView.updateListener.of((update) => {
        if (update.docChanged && onChange) onChange(update.state.doc.toString());
      }),
    ],
  });
  const view = new EditorView({ state, parent });
  return {
    view,
    text: () => view.state.doc.toString(),
    focus: () => view.focus(),
  };
}
