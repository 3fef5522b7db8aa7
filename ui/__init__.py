"""The Streamlit front end of rpn_viz: layout and drawing only; all computation is in ``rpn_viz``."""
