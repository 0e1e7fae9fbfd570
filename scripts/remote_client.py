"""Call a running `pgrag serve` from Python through LangServe's RemoteRunnable.

    .venv/bin/python scripts/remote_client.py [http://127.0.0.1:8000] [API_KEY]
"""

import sys

from langserve import RemoteRunnable

url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"
headers = {"X-API-Key": sys.argv[2]} if len(sys.argv) > 2 else {}

search = RemoteRunnable(f"{url}/search", headers=headers)
for hit in search.invoke({"query": "How are dense and lexical results fused?", "k": 3}):
    print(f"{hit['scores']['fused']:.3f}  {hit['source']}")

rag = RemoteRunnable(f"{url}/rag", headers=headers, timeout=300)
for chunk in rag.stream({"question": "How does pgrag fuse dense and lexical search results?"}):
    print(chunk.get("answer", ""), end="", flush=True)
print()
