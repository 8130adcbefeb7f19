# The single Lanyard image: every subcommand (webhook, controller, run, verify, the CLI) from one package.
FROM node:24-bookworm-slim
WORKDIR /opt/lanyard
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY deploy/helm/lanyard/crds ./deploy/helm/lanyard/crds
RUN ln -s /opt/lanyard/bin/lanyard.js /usr/local/bin/lanyard
USER 65532:65532
ENTRYPOINT ["lanyard"]
