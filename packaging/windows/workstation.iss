; Inno Setup script for the Windows installer. NOT built or tried here (no Windows machine); on Windows:
;   py -3.11 -m venv .venv && .venv\Scripts\pip install "torch==2.13.0" -e ".[package]"   (torch not needed: skip it)
;   .venv\Scripts\python -m PyInstaller --noconfirm --clean packaging\workstation.spec
;   "C:\Program Files (x86)\Inno Setup 6\ISCC.exe" packaging\windows\workstation.iss
; The result is dist\workstation-setup-<version>.exe: a per-user install, no admin rights, no network.
#define AppName "Labour Ward Ultrasound Workstation"
#define AppVersion "0.1.0"

[Setup]
AppId={{6E1B7F2A-3C55-4C8E-9B0B-7A3E2D9C4F10}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=Workstation project
DefaultDirName={localappdata}\Programs\workstation
DefaultGroupName={#AppName}
PrivilegesRequired=lowest
OutputDir=..\..\dist
OutputBaseFilename=workstation-setup-{#AppVersion}
SetupIconFile=..\..\resources\icons\workstation.ico
Compression=lzma2
SolidCompression=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible

[Files]
Source: "..\..\dist\workstation\*"; DestDir: "{app}"; Flags: recursesubdirs createallsubdirs ignoreversion

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\workstation.exe"
Name: "{group}\Self-test"; Filename: "{app}\workstation.exe"; Parameters: "--self-test"
Name: "{userdesktop}\{#AppName}"; Filename: "{app}\workstation.exe"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop shortcut"; GroupDescription: "Shortcuts:"

[Run]
Filename: "{app}\workstation.exe"; Description: "Start {#AppName}"; Flags: nowait postinstall skipifsilent
